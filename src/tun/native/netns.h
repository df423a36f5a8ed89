// Running one syscall inside another network namespace, for tun.c and netlink.c.
#pragma once

// Enters the namespace at path (a file such as /proc/PID/ns/net) on this
// thread, runs fn(arg), and comes back. Returns errno on failure (syscall
// names the one that failed), else what fn returned.
int in_netns(const char* path, int (*fn)(void* arg, const char** syscall), void* arg, const char** syscall);

#include <stdbool.h>
#include <stddef.h>
#include <node_api.h>

// The optional netns argument: out[0] = 0 when absent (undefined, null); false
// with an exception pending when it is not a path string of 1..size-1 bytes.
bool arg_netns_path(napi_env env, napi_value v, char* out, size_t size);
