// tunsteer_tun, sock_diag part: one function, the socket. The request (an
// inet_diag_req_v2 for one connection) is built, written and its answer
// parsed in TypeScript (src/owner/sock-diag.ts), as for rtnetlink.
//
//   sockDiagOpen([netns]) -> fd
//       A NETLINK_SOCK_DIAG socket (O_NONBLOCK|O_CLOEXEC). The kernel answers
//       a request for one socket while the write runs, so the reply is there
//       for the read that follows it (EAGAIN would mean it is not). With netns
//       (a path such as /run/netns/NAME) the socket asks about that
//       namespace's sockets: a netlink socket stays bound to the namespace it
//       was made in. Needs no privilege: inet_diag answers anyone.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include "sock_diag.h"
#include "netns.h"

#ifdef __linux__

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <uv.h>

static int diag_socket(void* arg, const char** syscall) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    *syscall = "socket(NETLINK_SOCK_DIAG)";
    return errno;
  }
  *(int*)arg = fd;
  return 0;
}

napi_value SockDiagOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  char netns[256];
  netns[0] = 0;
  if (argc >= 1 && !arg_netns_path(env, argv[0], netns, sizeof netns)) return NULL;
  int fd = -1;
  const char* syscall = "";
  int err = netns[0] ? in_netns(netns, diag_socket, &fd, &syscall) : diag_socket(&fd, &syscall);
  if (err) {
    char code[64], msg[256];
    uv_err_name_r(-err, code, sizeof code);
    snprintf(msg, sizeof msg, "%s %s: %s", syscall, code, strerror(err));
    napi_throw_error(env, code, msg);
    return NULL;
  }
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) return NULL;
  return v;
}

#endif
