// Argument checks for the addon's functions: a wrong type is a TypeError, a number
// out of range a RangeError (code ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE), never a crash.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>
#include <sys/socket.h>

// An integer in [lo, hi]; false with an exception pending otherwise.
bool arg_int(napi_env env, napi_value v, const char* what, int64_t lo, int64_t hi, int64_t* out);

// A Uint8Array (Buffer) or Uint32Array; data already adjusted by byteOffset.
bool arg_typed(napi_env env, napi_value v, napi_typedarray_type want, const char* what, void** data, size_t* length);

// The native object a JS wrapper holds (napi_wrap) as `this`, with the call's arguments
// (argc in: room in argv; out: how many came); NULL with a TypeError naming `what` otherwise.
void* arg_this(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv, const char* what);

// address (a string) of the given family (4 or 6) into ss and len, port 0; false with an
// exception pending if not.
bool arg_address(napi_env env, napi_value addrv, int family, struct sockaddr_storage* ss, socklen_t* len);

// address (a string) and port (a number) of the given family (4 or 6) into ss and len;
// false with an exception pending if not.
bool arg_endpoint(napi_env env, napi_value addrv, napi_value portv, int family, struct sockaddr_storage* ss, socklen_t* len);

// An address family, 4 or 6; false with a RangeError (or TypeError) pending otherwise.
bool arg_family(napi_env env, napi_value v, int* out);
