// The network namespace is per thread: this (JS) thread enters the target,
// makes the fd there, and comes back before any JS runs again. An fd made
// there stays bound to that namespace (a TUN device, a netlink socket).
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include "netns.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

int in_netns(const char* path, int (*fn)(void* arg, const char** syscall), void* arg, const char** syscall) {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    *syscall = "open(/proc/thread-self/ns/net)";
    return errno;
  }
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(home);
    *syscall = "open(netns)";
    return e;
  }
  int err = 0;
  if (setns(target, CLONE_NEWNET) < 0) {
    err = errno;
    *syscall = "setns";
  } else {
    err = fn(arg, syscall);
    if (setns(home, CLONE_NEWNET) < 0) abort(); // cannot go home: nothing after this would be safe
  }
  close(target);
  close(home);
  return err;
}

bool arg_netns_path(napi_env env, napi_value v, char* out, size_t size) {
  out[0] = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null) return true;
  if (t != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netns must be a path string");
    return false;
  }
  size_t n = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  if (n == 0 || n >= size) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "netns path must be 1..255 bytes");
    return false;
  }
  napi_get_value_string_utf8(env, v, out, size, &n);
  return true;
}
#endif
