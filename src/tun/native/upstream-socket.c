// tcpSocketNoPort(address, family) -> fd
//     A TCP socket (non-blocking, close-on-exec) bound to a source address with
//     IP_BIND_ADDRESS_NO_PORT (Linux 4.2), for the gateway's upstream dials. Route-all's
//     policy rule (`from UPLINK lookup main`) needs the uplink address as the source; a
//     plain bind(addr, 0), which node does for `localAddress`, takes an ephemeral port for
//     that socket alone, so every upstream connection together (and each one's TIME-WAIT)
//     shares one port range: 28,232 by default, under the 100,000 connections the gateway
//     admits, and bind(0) scans longer the fuller the range is. With the option the port is
//     chosen at connect(), per destination, as for an unbound socket.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include "upstream-socket.h"

#ifdef __linux__
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "errno-error.h"
#include "napi-args.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static napi_value TcpSocketNoPort(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "EINVAL", "address and family are required");
    return NULL;
  }
  int family;
  if (!arg_family(env, argv[1], &family)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!arg_address(env, argv[0], family, &ss, &len)) return NULL;
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  int one = 1;
  // the option is IPv4's (SOL_IP) for both families: the IPv6 bind path reads the same flag
  const char* step = "setsockopt(IP_BIND_ADDRESS_NO_PORT)";
  if (setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0) goto fail;
  step = "bind";
  if (bind(fd, (struct sockaddr*)&ss, len) != 0) goto fail;
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) {
    close(fd);
    return NULL;
  }
  return v;
fail: {
  int e = errno;
  close(fd);
  throw_errno(env, e, step);
  return NULL;
}
}

bool upstream_socket_register(napi_env env, napi_value exports) {
  napi_value v;
  return napi_create_function(env, "tcpSocketNoPort", NAPI_AUTO_LENGTH, TcpSocketNoPort, NULL, &v) == napi_ok &&
         napi_set_named_property(env, exports, "tcpSocketNoPort", v) == napi_ok;
}

#else

bool upstream_socket_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}

#endif
