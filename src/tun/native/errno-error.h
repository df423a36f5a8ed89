// A JS Error for a failed syscall, the same from every part of the addon:
// code "EPERM", message "ioctl(TUNSETOFFLOAD) EPERM: operation not permitted",
// errno (negative, as libuv's) and syscall properties.
#pragma once
#include <node_api.h>

napi_value errno_error(napi_env env, int err, const char* syscall);

// Throws errno_error(); the caller returns NULL.
void throw_errno(napi_env env, int err, const char* syscall);
