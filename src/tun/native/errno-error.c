// See errno-error.h.
#include "errno-error.h"
#include <stdio.h>
#include <uv.h>

napi_value errno_error(napi_env env, int err, const char* syscall) {
  char code[64];
  char text[160];
  char msg[320];
  uv_err_name_r(-err, code, sizeof code);
  uv_strerror_r(-err, text, sizeof text);
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, code, text);
  napi_value codev, msgv, errv, errnov, sysv;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codev);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msgv);
  napi_create_error(env, codev, msgv, &errv);
  napi_create_int32(env, -err, &errnov);
  napi_set_named_property(env, errv, "errno", errnov);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sysv);
  napi_set_named_property(env, errv, "syscall", sysv);
  return errv;
}

void throw_errno(napi_env env, int err, const char* syscall) {
  napi_throw(env, errno_error(env, err, syscall));
}
