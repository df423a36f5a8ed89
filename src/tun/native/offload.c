// tunsteer_tun, offload part: the three ioctls behind IFF_VNET_HDR. Which
// offloads to ask for, in which order to fall back, and the header itself
// are TypeScript's (src/tun/tun-offload.ts, src/stack/wire/virtio-net-hdr.ts).
//
//   tunFlags(fd) -> number                  TUNGETIFF: the device's IFF_* flags (an fd
//                                           handed over by another process says there
//                                           whether it carries a virtio-net header)
//   tunSetVnetHdrSize(fd, bytes)            TUNSETVNETHDRSZ
//   tunSetOffload(fd, flags) -> boolean     TUNSETOFFLOAD with TUN_F_* bits: false when
//                                           this kernel refuses the combination (EINVAL:
//                                           a bit it does not know), so the caller can
//                                           try a smaller one; throws on anything else
//   TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6, VNET_HDR_LEN
//
// None of these needs a capability once the fd is open: the data plane, which
// runs without root, can probe an fd it inherited.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <stdbool.h>
#include "offload.h"
#include "errno-error.h"
#include "napi-args.h"

#ifdef __linux__

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <uv.h>

// Linux 6.2 (UDP segmentation offload); older headers lack them.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/** fd and, when want > 1, one more integer argument. */
static bool args(napi_env env, napi_callback_info info, size_t want, int64_t* fd, const char* what2, int64_t lo, int64_t hi, int64_t* v2) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", want == 1 ? "(fd)" : "(fd, value)");
    return false;
  }
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, fd)) return false;
  return want == 1 || arg_int(env, argv[1], what2, lo, hi, v2);
}

static napi_value TunFlags(napi_env env, napi_callback_info info) {
  int64_t fd;
  if (!args(env, info, 1, &fd, NULL, 0, 0, NULL)) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl((int)fd, TUNGETIFF, &ifr) < 0) {
    throw_errno(env, errno, "ioctl(TUNGETIFF)");
    return NULL;
  }
  napi_value v;
  if (napi_create_uint32(env, (uint16_t)ifr.ifr_flags, &v) != napi_ok) return NULL;
  return v;
}

static napi_value TunSetVnetHdrSize(napi_env env, napi_callback_info info) {
  int64_t fd, size;
  if (!args(env, info, 2, &fd, "bytes", (int64_t)sizeof(struct virtio_net_hdr), 64, &size)) return NULL;
  int n = (int)size;
  if (ioctl((int)fd, TUNSETVNETHDRSZ, &n) < 0) {
    throw_errno(env, errno, "ioctl(TUNSETVNETHDRSZ)");
    return NULL;
  }
  return NULL;
}

static napi_value TunSetOffload(napi_env env, napi_callback_info info) {
  int64_t fd, flags;
  if (!args(env, info, 2, &fd, "flags", 0, 0xff, &flags)) return NULL;
  bool ok = true;
  if (ioctl((int)fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) {
    if (errno != EINVAL) {
      throw_errno(env, errno, "ioctl(TUNSETOFFLOAD)");
      return NULL;
    }
    ok = false;
  }
  napi_value v;
  if (napi_get_boolean(env, ok, &v) != napi_ok) return NULL;
  return v;
}

bool offload_register(napi_env env, napi_value exports) {
  napi_value v;
#define FN(js, c)                                                                     \
  if (napi_create_function(env, js, NAPI_AUTO_LENGTH, c, NULL, &v) != napi_ok ||       \
      napi_set_named_property(env, exports, js, v) != napi_ok)                        \
    return false;
#define CONST(js, val)                                                                \
  if (napi_create_int32(env, (val), &v) != napi_ok || napi_set_named_property(env, exports, js, v) != napi_ok) \
    return false;
  FN("tunFlags", TunFlags)
  FN("tunSetVnetHdrSize", TunSetVnetHdrSize)
  FN("tunSetOffload", TunSetOffload)
  CONST("TUN_F_CSUM", TUN_F_CSUM)
  CONST("TUN_F_TSO4", TUN_F_TSO4)
  CONST("TUN_F_TSO6", TUN_F_TSO6)
  CONST("TUN_F_USO4", TUN_F_USO4)
  CONST("TUN_F_USO6", TUN_F_USO6)
  CONST("VNET_HDR_LEN", (int)sizeof(struct virtio_net_hdr))
#undef FN
#undef CONST
  return true;
}

#else

bool offload_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}

#endif
