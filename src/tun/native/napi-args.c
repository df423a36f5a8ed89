// See napi-args.h.
#define NAPI_VERSION 8
#include "napi-args.h"
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

bool arg_int(napi_env env, napi_value v, const char* what, int64_t lo, int64_t hi, int64_t* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a number", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d) {
    char m[128];
    snprintf(m, sizeof m, "%s must be an integer in [%lld, %lld]", what, (long long)lo, (long long)hi);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", m);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

// A Uint8Array (Buffer) or Uint32Array; data already adjusted by byteOffset.
bool arg_typed(napi_env env, napi_value v, napi_typedarray_type want, const char* what,
                      void** data, size_t* length) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (!is || napi_get_typedarray_info(env, v, &type, length, data, &ab, &off) != napi_ok ||
      (type != want && !(want == napi_uint8_array && type == napi_uint8_clamped_array))) {
    char m[96];
    snprintf(m, sizeof m, "%s must be a %s", what, want == napi_uint8_array ? "Buffer" : "Uint32Array");
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
    return false;
  }
  return true;
}

void* arg_this(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv, const char* what) {
  napi_value self;
  size_t none = 0;
  if (napi_get_cb_info(env, info, argc ? argc : &none, argv, &self, NULL) != napi_ok) return NULL;
  void* p = NULL;
  if (napi_unwrap(env, self, &p) != napi_ok || p == NULL) {
    char m[64];
    snprintf(m, sizeof m, "not a %s", what);
    napi_throw_type_error(env, "ERR_INVALID_THIS", m);
    return NULL;
  }
  return p;
}

bool arg_address(napi_env env, napi_value addrv, int family, struct sockaddr_storage* ss, socklen_t* len) {
  char addr[INET6_ADDRSTRLEN + 1] = {0};
  size_t n = 0;
  napi_valuetype t;
  if (napi_typeof(env, addrv, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, addrv, addr, sizeof addr, &n) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "address must be a string");
    return false;
  }
  memset(ss, 0, sizeof *ss);
  int ok;
  if (family == 6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)ss;
    a->sin6_family = AF_INET6;
    ok = inet_pton(AF_INET6, addr, &a->sin6_addr);
    *len = sizeof *a;
  } else {
    struct sockaddr_in* a = (struct sockaddr_in*)ss;
    a->sin_family = AF_INET;
    ok = inet_pton(AF_INET, addr, &a->sin_addr);
    *len = sizeof *a;
  }
  if (ok != 1) {
    napi_throw_type_error(env, "EINVAL", "address is not an IP address of that family");
    return false;
  }
  return true;
}

bool arg_endpoint(napi_env env, napi_value addrv, napi_value portv, int family, struct sockaddr_storage* ss, socklen_t* len) {
  int64_t port;
  if (!arg_address(env, addrv, family, ss, len) || !arg_int(env, portv, "port", 0, 65535, &port)) return false;
  if (family == 6) ((struct sockaddr_in6*)ss)->sin6_port = htons((uint16_t)port);
  else ((struct sockaddr_in*)ss)->sin_port = htons((uint16_t)port);
  return true;
}

bool arg_family(napi_env env, napi_value v, int* out) {
  int64_t family;
  if (!arg_int(env, v, "family", 4, 6, &family)) return false;
  if (family == 5) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "family must be 4 or 6");
    return false;
  }
  *out = (int)family;
  return true;
}
