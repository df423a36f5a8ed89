// tunsteer_tun, rtnetlink part: one function, the socket. Everything else is in
// TypeScript: the fd is watched with watchReadable (tun.c), read with read(2)
// (fs.readSync), and its messages parsed by src/routing/netlink-messages.ts.
//
//   netlinkOpen(groups[, netns]) -> fd
//       A NETLINK_ROUTE socket (O_NONBLOCK|O_CLOEXEC) subscribed to the multicast
//       groups in the bitmask (RTMGRP_LINK 0x1, RTMGRP_IPV4_IFADDR 0x10,
//       RTMGRP_IPV4_ROUTE 0x40, RTMGRP_IPV6_IFADDR 0x100, RTMGRP_IPV6_ROUTE 0x400),
//       with a 1 MiB receive buffer (SO_RCVBUFFORCE when allowed): a burst of
//       events (a link going down takes its routes with it) must not overflow it;
//       if it does, read() fails with ENOBUFS and the caller re-reads the state.
//       With netns (a path such as /run/netns/NAME) the socket is made in that
//       namespace: a netlink socket stays bound to the namespace it was made in.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include "netlink.h"
#include "errno-error.h"
#include "netns.h"

#ifdef __linux__

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <uv.h>

#define RCVBUF (1 << 20)

static int nl_socket(uint32_t groups, int* out_fd, const char** syscall) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    *syscall = "socket(AF_NETLINK)";
    return errno;
  }
  int size = RCVBUF;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size); // capped by rmem_max: best effort
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    *syscall = "bind(AF_NETLINK)";
    return e;
  }
  *out_fd = fd;
  return 0;
}

struct nl_args {
  uint32_t groups;
  int* out_fd;
};

static int nl_socket_cb(void* arg, const char** syscall) {
  struct nl_args* a = arg;
  return nl_socket(a->groups, a->out_fd, syscall);
}

napi_value NetlinkOpen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype t;
  uint32_t groups = 0;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_number || napi_get_value_uint32(env, argv[0], &groups) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkOpen(groups: number[, netns: string])");
    return NULL;
  }
  char netns[256];
  netns[0] = 0;
  if (argc >= 2 && !arg_netns_path(env, argv[1], netns, sizeof netns)) return NULL;
  int fd = -1;
  const char* syscall = "";
  struct nl_args a = {groups, &fd};
  int err = netns[0] ? in_netns(netns, nl_socket_cb, &a, &syscall) : nl_socket(groups, &fd, &syscall);
  if (err) {
    throw_errno(env, err, syscall);
    return NULL;
  }
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) return NULL;
  return v;
}

#endif
