// tunsteer_tun: batched TUN I/O for Node, plain C N-API (no node-addon-api).
//
// Contract (the JS side is src/tun/native-addon.ts):
//   open(name, flags[, netns]) -> { fd, name }   TUNSETIFF with IFF_TUN|IFF_NO_PI|flags,
//                                                fd is O_NONBLOCK|O_CLOEXEC. With netns (a
//                                                path such as /proc/PID/ns/net) the device is
//                                                created in that namespace: this thread
//                                                enters it for the two syscalls and returns.
//   createReader(fd, slab, lengths, slotSize, maxBatch, cb) -> reader (paused)
//       reader.resume() / pause() / close() / stats()
//       When the fd is readable the reader read()s up to maxBatch packets into
//       slot i = slab[i*slotSize, (i+1)*slotSize), lengths[i] = packet length,
//       stops at EAGAIN, then calls cb(count, err) ONCE. err is undefined unless
//       the fd failed; then the reader is paused and count holds what was read first.
//   writeBatch(fd, slab, lengths, count, slotSize) -> packets written
//       One write() per packet (TUN takes exactly one packet per write). Stops at
//       EAGAIN/ENOBUFS/EIO (the rest would fail too), skips a packet the kernel
//       rejects (EINVAL/EFAULT/EMSGSIZE); the caller counts count - written as drops.
//       Throws only when the fd itself is unusable (EBADF, EBADFD, ...).
//   IFF_MULTI_QUEUE, IFF_VNET_HDR: flag values for open().
//   originalDst(fd) -> { family, address, port } | null
//       The destination a connection had before an nftables/iptables redirect
//       (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST); null when it was not redirected.
//   transparentListener(address, port, family, backlog) -> fd
//       A listening TCP socket with IP_TRANSPARENT (TPROXY), O_NONBLOCK|O_CLOEXEC,
//       for net.Server.listen({ fd }). Needs CAP_NET_ADMIN when called.
//   watchReadable, transparentUdp, udpRecv, udpReplySocket, udpSendFrom,
//       icmpReplySocket, udpPortUnreachable: TPROXY's UDP path, described at
//       "tproxy UDP" below.
//   netlinkOpen: an rtnetlink socket for the network watcher (netlink.c).
//   tunFlags, tunSetVnetHdrSize, tunSetOffload, TUN_F_*: offloads (offload.c).
//   tunSteeringLoads, tunSteeringAttach: queue steering (steering.c).
//   createTxThread: a writer thread per fd that does writeBatch's writes off the
//       JS thread (tx-thread.c).
//
// Errors are JS Errors with code ('EBUSY'), errno (negative, as in Node), syscall.
// Nothing here aborts the process: bad arguments throw TypeError/RangeError.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#ifdef __linux__

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/if_tun.h>
#include <linux/filter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <uv.h>
#include "netlink.h"
#include "sock_diag.h"
#include "netns.h"
#include "errno-error.h"
#include "offload.h"
#include "steering.h"
#include "tun-write.h"
#include "napi-args.h"
#include "tx-thread.h"
#include "upstream-socket.h"

// Bounded retries of a syscall interrupted by a signal.
#define EINTR_RETRIES 8

// ---------------------------------------------------------------- errors

// errno_error() and throw_errno(): errno-error.c, shared with the other parts.

// Every napi call that can only fail on a programming error of this file.
#define NAPI_OK(env, call)                                            \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      bool pending_ = false;                                          \
      napi_is_exception_pending((env), &pending_);                    \
      if (!pending_) napi_throw_error((env), "EINTERNAL", #call);     \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

// ---------------------------------------------------------------- argument helpers

// arg_int() and arg_typed(): napi-args.c, shared with the writer thread.

// ---------------------------------------------------------------- open

// Creates the TUN device; errno on failure (the fd is closed then).
static int tun_create(char name[IFNAMSIZ + 1], int64_t flags, int* out_fd, const char** syscall) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *syscall = "open";
    return errno;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | flags);
  memcpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    *syscall = "ioctl(TUNSETIFF)";
    return e;
  }
  memcpy(name, ifr.ifr_name, IFNAMSIZ - 1);
  name[IFNAMSIZ - 1] = 0;
  *out_fd = fd;
  return 0;
}

struct tun_args {
  char* name;
  int64_t flags;
  int* out_fd;
};

static int tun_create_cb(void* arg, const char** syscall) {
  struct tun_args* a = arg;
  return tun_create(a->name, a->flags, a->out_fd, syscall);
}

static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ + 1];
  memset(name, 0, sizeof name);
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_string) {
      size_t n = 0;
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &n);
      if (n > IFNAMSIZ - 1) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "TUN name longer than 15 bytes");
        return NULL;
      }
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n);
    } else if (t != napi_undefined && t != napi_null) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "name must be a string");
      return NULL;
    }
  }
  int64_t flags = 0;
  if (argc >= 2) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    if (t != napi_undefined && !arg_int(env, argv[1], "flags", 0, 0xffff, &flags)) return NULL;
  }
  if (flags & ~(int64_t)(IFF_MULTI_QUEUE | IFF_VNET_HDR)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "flags: only IFF_MULTI_QUEUE and IFF_VNET_HDR");
    return NULL;
  }

  char netns[256];
  netns[0] = 0;
  if (argc >= 3 && !arg_netns_path(env, argv[2], netns, sizeof netns)) return NULL;
  int fd = -1;
  const char* syscall = "";
  struct tun_args a = {name, flags, &fd};
  int err = netns[0] ? in_netns(netns, tun_create_cb, &a, &syscall) : tun_create(name, flags, &fd, &syscall);
  if (err) {
    throw_errno(env, err, syscall);
    return NULL;
  }

  napi_value res, fdv, namev;
  NAPI_OK(env, napi_create_object(env, &res));
  NAPI_OK(env, napi_create_int32(env, fd, &fdv));
  NAPI_OK(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &namev));
  NAPI_OK(env, napi_set_named_property(env, res, "fd", fdv));
  NAPI_OK(env, napi_set_named_property(env, res, "name", namev));
  return res;
}

// ---------------------------------------------------------------- writeBatch

static napi_value WriteBatch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "writeBatch(fd, slab, lengths, count, slotSize)");
    return NULL;
  }
  int64_t fd, count, slot;
  uint8_t* slab;
  uint32_t* lengths;
  size_t slab_len, lengths_len;
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!arg_typed(env, argv[1], napi_uint8_array, "slab", (void**)&slab, &slab_len)) return NULL;
  if (!arg_typed(env, argv[2], napi_uint32_array, "lengths", (void**)&lengths, &lengths_len)) return NULL;
  if (!arg_int(env, argv[3], "count", 0, (int64_t)lengths_len, &count)) return NULL;
  if (!arg_int(env, argv[4], "slotSize", 1, 1 << 20, &slot)) return NULL;
  if ((uint64_t)count * (uint64_t)slot > slab_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "count * slotSize exceeds the slab");
    return NULL;
  }

  tun_write_result_t w = tun_write_packets((int)fd, slab, lengths, (uint32_t)count, (uint32_t)slot);
  if (w.fatal) {
    throw_errno(env, w.fatal, "write");
    return NULL;
  }
  uint32_t written = w.written;
  napi_value res;
  NAPI_OK(env, napi_create_uint32(env, written, &res));
  return res;
}

// ---------------------------------------------------------------- reader

typedef struct reader {
  uv_poll_t poll;
  napi_env env;
  int fd;
  uint8_t* slab;
  uint32_t* lengths;
  uint32_t slot_size;
  uint32_t max_batch;
  napi_ref slab_ref, lengths_ref, cb_ref;
  napi_async_context actx;
  bool polling;     // uv_poll_start is in force
  bool closed;      // close() was called: no more callbacks
  bool uv_closed;   // uv_close finished: the handle memory is free to go
  bool js_gone;     // the JS object was finalized
  bool in_callback; // inside napi_make_callback: keep actx until it returns
  bool notify_only; // a watcher (watchReadable): no reads here, cb(0) when readable
  double wakes, batches, packets, bytes, truncated, errors;
} reader_t;

static void reader_maybe_free(reader_t* r) {
  if (r->uv_closed && r->js_gone) free(r);
}

static void on_uv_closed(uv_handle_t* h) {
  reader_t* r = (reader_t*)h->data;
  r->uv_closed = true;
  reader_maybe_free(r);
}

// Release everything JS-side and close the handle; idempotent. Needs a JS context.
static void reader_shutdown(reader_t* r) {
  if (r->closed) return;
  r->closed = true;
  if (r->polling) uv_poll_stop(&r->poll);
  r->polling = false;
  if (r->cb_ref) napi_delete_reference(r->env, r->cb_ref);
  if (r->slab_ref) napi_delete_reference(r->env, r->slab_ref);
  if (r->lengths_ref) napi_delete_reference(r->env, r->lengths_ref);
  if (r->actx && !r->in_callback) {
    napi_async_destroy(r->env, r->actx);
    r->actx = NULL;
  }
  r->cb_ref = r->slab_ref = r->lengths_ref = NULL;
  uv_close((uv_handle_t*)&r->poll, on_uv_closed);
}

static void reader_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  reader_t* r = (reader_t*)data;
  // The object went unreachable without close(): nobody can pause or close it
  // any more, so stop reading. (Usually the callback's closure keeps it alive.)
  reader_shutdown(r);
  r->js_gone = true;
  reader_maybe_free(r);
}

static void deliver(reader_t* r, uint32_t n, int err) {
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2];
  if (napi_get_reference_value(env, r->cb_ref, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv);  // napi_make_callback needs an object receiver
    napi_create_uint32(env, n, &argv[0]);
    if (err) argv[1] = errno_error(env, err, "read");
    else napi_get_undefined(env, &argv[1]);
    r->in_callback = true;
    napi_status s = napi_make_callback(env, r->actx, recv, cb, 2, argv, NULL);
    r->in_callback = false;
    if (r->closed && r->actx) {  // close() ran inside the callback
      napi_async_destroy(env, r->actx);
      r->actx = NULL;
    }
    if (s != napi_ok) {
      // The handler threw: hand it to process 'uncaughtException', as any event handler.
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ex;
        napi_get_and_clear_last_exception(env, &ex);
        napi_fatal_exception(env, ex);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  (void)events;
  reader_t* r = (reader_t*)h->data;
  if (r->closed || !r->polling) return;
  r->wakes++;
  if (status < 0) {
    uv_poll_stop(&r->poll);
    r->polling = false;
    deliver(r, 0, -status);
    return;
  }
  if (r->notify_only) {
    r->batches++;
    deliver(r, 0, 0);
    return;
  }
  uint32_t n = 0;
  int err = 0;
  uint32_t bad = 0;
  while (n < r->max_batch) {
    uint8_t* slot = r->slab + (size_t)n * r->slot_size;
    ssize_t k = read(r->fd, slot, r->slot_size);
    if (k > 0) {
      // tun_put_user() returns the packet's full length even when the buffer was
      // too small for it: such a packet arrived cut short. Drop it.
      if ((size_t)k > r->slot_size) {
        r->truncated++;
        if (++bad > r->max_batch) break;
        continue;
      }
      r->lengths[n++] = (uint32_t)k;
      r->bytes += (double)k;
      continue;
    }
    if (k == 0) break;
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) break;
    if (e == EINTR || e == EFAULT || e == EMSGSIZE || e == EINVAL) {
      // A signal, or one packet lost; go on, but boundedly.
      if (e != EINTR) r->errors++;
      if (++bad > r->max_batch) break;
      continue;
    }
    err = e;
    break;
  }
  if (err) {
    uv_poll_stop(&r->poll);
    r->polling = false;
  }
  if (n == 0 && !err) return;
  r->batches++;
  r->packets += n;
  deliver(r, n, err);
}

static reader_t* unwrap_reader(napi_env env, napi_callback_info info) {
  return (reader_t*)arg_this(env, info, NULL, NULL, "TUN reader");
}

static napi_value ReaderResume(napi_env env, napi_callback_info info) {
  reader_t* r = unwrap_reader(env, info);
  if (!r) return NULL;
  if (r->closed) {
    napi_throw_error(env, "ERR_TUN_CLOSED", "reader is closed");
    return NULL;
  }
  if (!r->polling) {
    int rc = uv_poll_start(&r->poll, UV_READABLE, on_poll);
    if (rc < 0) {
      throw_errno(env, -rc, "uv_poll_start");
      return NULL;
    }
    r->polling = true;
  }
  return NULL;
}

static napi_value ReaderPause(napi_env env, napi_callback_info info) {
  reader_t* r = unwrap_reader(env, info);
  if (!r) return NULL;
  if (r->polling && !r->closed) uv_poll_stop(&r->poll);
  r->polling = false;
  return NULL;
}

static napi_value ReaderClose(napi_env env, napi_callback_info info) {
  reader_t* r = unwrap_reader(env, info);
  if (!r) return NULL;
  reader_shutdown(r);
  return NULL;
}

static napi_value ReaderStats(napi_env env, napi_callback_info info) {
  reader_t* r = unwrap_reader(env, info);
  if (!r) return NULL;
  napi_value o, v;
  NAPI_OK(env, napi_create_object(env, &o));
#define STAT(f)                                      \
  NAPI_OK(env, napi_create_double(env, r->f, &v));  \
  NAPI_OK(env, napi_set_named_property(env, o, #f, v));
  STAT(wakes) STAT(batches) STAT(packets) STAT(bytes) STAT(truncated) STAT(errors)
#undef STAT
  return o;
}

/** A reader polling fd, not yet visible to JS; NULL with an exception pending if cb is no function or the poll fails. */
static reader_t* reader_alloc(napi_env env, int fd, napi_value cb) {
  napi_valuetype t;
  napi_typeof(env, cb, &t);
  if (t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "cb must be a function");
    return NULL;
  }
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, (struct uv_loop_s**)&loop) != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "no event loop");
    return NULL;
  }
  reader_t* r = (reader_t*)calloc(1, sizeof *r);
  if (!r) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  int rc = uv_poll_init(loop, &r->poll, fd);
  if (rc < 0) {
    free(r);
    throw_errno(env, -rc, "uv_poll_init");
    return NULL;
  }
  r->poll.data = r;
  r->env = env;
  r->fd = fd;
  return r;
}

/** Undoes reader_alloc (and any references made since); throws what unless an exception is pending. */
static napi_value reader_fail(napi_env env, reader_t* r, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "EINTERNAL", what);
  reader_shutdown(r);  // frees through on_uv_closed once the loop runs
  r->js_gone = true;
  return NULL;
}

/** The JS object of a reader: resume/pause/close/stats, the callback held, r freed with it. */
static napi_value reader_wrap(napi_env env, reader_t* r, napi_value cb, const char* resource, const char* what) {
  napi_value obj, fn, name;
  if (napi_create_object(env, &obj) != napi_ok) return reader_fail(env, r, what);
#define METHOD(js, c)                                                              \
  if (napi_create_function(env, js, NAPI_AUTO_LENGTH, c, NULL, &fn) != napi_ok ||  \
      napi_set_named_property(env, obj, js, fn) != napi_ok)                        \
    return reader_fail(env, r, what);
  METHOD("resume", ReaderResume)
  METHOD("pause", ReaderPause)
  METHOD("close", ReaderClose)
  METHOD("stats", ReaderStats)
#undef METHOD
  if (napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, obj, name, &r->actx) != napi_ok ||
      napi_create_reference(env, cb, 1, &r->cb_ref) != napi_ok ||
      napi_wrap(env, obj, r, reader_finalize, NULL, NULL) != napi_ok)
    return reader_fail(env, r, what);
  return obj;
}

static napi_value CreateReader(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "createReader(fd, slab, lengths, slotSize, maxBatch, cb)");
    return NULL;
  }
  int64_t fd, slot, maxb;
  uint8_t* slab;
  uint32_t* lengths;
  size_t slab_len, lengths_len;
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!arg_typed(env, argv[1], napi_uint8_array, "slab", (void**)&slab, &slab_len)) return NULL;
  if (!arg_typed(env, argv[2], napi_uint32_array, "lengths", (void**)&lengths, &lengths_len)) return NULL;
  if (!arg_int(env, argv[3], "slotSize", 1, 1 << 20, &slot)) return NULL;
  if (!arg_int(env, argv[4], "maxBatch", 1, (int64_t)lengths_len, &maxb)) return NULL;
  if ((uint64_t)maxb * (uint64_t)slot > slab_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "maxBatch * slotSize exceeds the slab");
    return NULL;
  }
  reader_t* r = reader_alloc(env, (int)fd, argv[5]);
  if (!r) return NULL;
  r->slab = slab;
  r->lengths = lengths;
  r->slot_size = (uint32_t)slot;
  r->max_batch = (uint32_t)maxb;
  if (napi_create_reference(env, argv[1], 1, &r->slab_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &r->lengths_ref) != napi_ok)
    return reader_fail(env, r, "createReader failed");
  return reader_wrap(env, r, argv[5], "tunsteer:TunReader", "createReader failed");
}

// ---------------------------------------------------------------- redirect / tproxy sockets

static napi_value endpoint_value(napi_env env, const struct sockaddr_storage* ss) {
  char text[INET6_ADDRSTRLEN] = {0};
  int family, port;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    family = 4;
    port = ntohs(a->sin_port);
  } else {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    family = 6;
    port = ntohs(a->sin6_port);
  }
  napi_value obj, v;
  NAPI_OK(env, napi_create_object(env, &obj));
  NAPI_OK(env, napi_create_int32(env, family, &v));
  NAPI_OK(env, napi_set_named_property(env, obj, "family", v));
  NAPI_OK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v));
  NAPI_OK(env, napi_set_named_property(env, obj, "address", v));
  NAPI_OK(env, napi_create_int32(env, port, &v));
  NAPI_OK(env, napi_set_named_property(env, obj, "port", v));
  return obj;
}

/** The one argument of a call that takes a single fd; false (with an exception pending) if it is not one. */
static bool fd_arg(napi_env env, napi_callback_info info, const char* what, int64_t* out) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < 1) {
    napi_throw_type_error(env, "EINVAL", "an fd argument is required");
    return false;
  }
  return arg_int(env, argv[0], what, 0, INT32_MAX, out);
}

static napi_value OriginalDst(napi_env env, napi_callback_info info) {
  int64_t fd;
  if (!fd_arg(env, info, "fd", &fd)) return NULL;
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname((int)fd, (struct sockaddr*)&local, &len) != 0) {
    throw_errno(env, errno, "getsockname");
    return NULL;
  }
  struct sockaddr_storage orig;
  memset(&orig, 0, sizeof orig);
  len = sizeof orig;
  int rc = local.ss_family == AF_INET6 ? getsockopt((int)fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &orig, &len)
                                       : getsockopt((int)fd, SOL_IP, SO_ORIGINAL_DST, &orig, &len);
  napi_value out;
  if (rc != 0) {
    // ENOENT: no conntrack entry with a NAT (the connection was not redirected)
    if (errno == ENOENT || errno == ENOPROTOOPT) {
      NAPI_OK(env, napi_get_null(env, &out));
      return out;
    }
    throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)");
    return NULL;
  }
  return endpoint_value(env, &orig);
}

static napi_value TransparentListener(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int family;
  int64_t backlog;
  if (argc < 4) {
    napi_throw_type_error(env, "EINVAL", "address, port, family and backlog are required");
    return NULL;
  }
  if (!arg_family(env, argv[2], &family) || !arg_int(env, argv[3], "backlog", 1, 65535, &backlog)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!arg_endpoint(env, argv[0], argv[1], family, &ss, &len)) return NULL;
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  int one = 1;
  const char* step = "setsockopt(IP_TRANSPARENT)";
  if ((family == 6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                   : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) != 0)
    goto fail;
  // [::] takes IPv6 only: 0.0.0.0 on the same port has its own socket
  step = "setsockopt(IPV6_V6ONLY)";
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) goto fail;
  step = "setsockopt(SO_REUSEADDR)";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
  step = "bind";
  if (bind(fd, (struct sockaddr*)&ss, len) != 0) goto fail;
  step = "listen";
  if (listen(fd, (int)backlog) != 0) goto fail;
  napi_value v;
  NAPI_OK(env, napi_create_int32(env, fd, &v));
  return v;
fail: {
  int e = errno;
  close(fd);
  throw_errno(env, e, step);
  return NULL;
}
}

// ---------------------------------------------------------------- tproxy UDP
//
// watchReadable(fd, cb) -> watcher { resume, pause, close, stats }
//     cb(0, undefined) whenever fd is readable (level-triggered, on the loop's
//     thread); the caller drains it with udpRecv. On a poll error: cb(0, err), paused.
// transparentUdp(address, port, family) -> fd
//     A UDP socket with IP_TRANSPARENT / IPV6_TRANSPARENT (TPROXY delivers to it
//     datagrams addressed elsewhere) and IP(V6)_RECVORIGDSTADDR. Needs CAP_NET_ADMIN
//     or CAP_NET_RAW when called.
// udpRecv(fd, buf) -> { length, truncated, src, dst } | null
//     One datagram, non-blocking (null: none waiting). dst is the address the client
//     sent to (IP_ORIGDSTADDR), src the client; each { family, address, port }.
// udpReplySocket(family) -> fd
//     A raw IPPROTO_UDP socket with IP(V6)_TRANSPARENT, for replies from addresses
//     that are not this host's. Receiving is shut off by a locked drop-all filter.
//     Made while privileged; sending needs no privilege afterwards.
// udpSendFrom(fd, buf, srcAddress, srcPort, dstAddress, dstPort) -> bytes | -1
//     One UDP datagram from src to dst through the reply socket (the UDP header and
//     checksum built here, the IP header and any fragmentation by the kernel).
//     -1: the socket buffer is full (EAGAIN, ENOBUFS), the datagram dropped.
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR 20
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IPV6_ORIGDSTADDR
#define IPV6_ORIGDSTADDR 74
#endif

static napi_value CreateWatcher(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "watchReadable(fd, cb)");
    return NULL;
  }
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  reader_t* r = reader_alloc(env, (int)fd, argv[1]);
  if (!r) return NULL;
  r->notify_only = true;
  return reader_wrap(env, r, argv[1], "tunsteer:FdWatcher", "watchReadable failed");
}

static int set_transparent(int fd, int family) {
  int one = 1;
  return family == 6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                     : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
}

static napi_value TransparentUdp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "transparentUdp(address, port, family)");
    return NULL;
  }
  int family;
  if (!arg_family(env, argv[2], &family)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!arg_endpoint(env, argv[0], argv[1], family, &ss, &len)) return NULL;
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  int one = 1;
  const char* step = "setsockopt(IP_TRANSPARENT)";
  if (set_transparent(fd, family) != 0) goto fail;
  step = "setsockopt(IP_RECVORIGDSTADDR)";
  if ((family == 6 ? setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof one)
                   : setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one)) != 0)
    goto fail;
  step = "setsockopt(IPV6_V6ONLY)";
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) goto fail;
  step = "setsockopt(SO_REUSEADDR)";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
  // bursts of datagrams wait here while JS is busy: 4 MiB, past rmem_max
  // (208 KiB by default) with SO_RCVBUFFORCE while we are root, else capped
  int rcvbuf = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  step = "bind";
  if (bind(fd, (struct sockaddr*)&ss, len) != 0) goto fail;
  napi_value v;
  NAPI_OK(env, napi_create_int32(env, fd, &v));
  return v;
fail: {
  int e = errno;
  close(fd);
  throw_errno(env, e, step);
  return NULL;
}
}

static napi_value UdpRecv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd;
  uint8_t* buf;
  size_t buf_len;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "udpRecv(fd, buf)");
    return NULL;
  }
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!arg_typed(env, argv[1], napi_uint8_array, "buf", (void**)&buf, &buf_len)) return NULL;
  struct sockaddr_storage src, dst;
  memset(&src, 0, sizeof src);
  memset(&dst, 0, sizeof dst);
  struct iovec iov = {.iov_base = buf, .iov_len = buf_len};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(struct sockaddr_in6)) + CMSG_SPACE(sizeof(struct sockaddr_in6))];
  } u;
  struct msghdr msg;
  ssize_t n;
  int tries = 0;
  do {
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &src;
    msg.msg_namelen = sizeof src;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    n = recvmsg((int)fd, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  napi_value out;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      NAPI_OK(env, napi_get_null(env, &out));
      return out;
    }
    throw_errno(env, errno, "recvmsg");
    return NULL;
  }
  bool found = false;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR && c->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in))) {
      memcpy(&dst, CMSG_DATA(c), sizeof(struct sockaddr_in));
      found = true;
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR && c->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in6))) {
      memcpy(&dst, CMSG_DATA(c), sizeof(struct sockaddr_in6));
      found = true;
    }
  }
  if (!found || (src.ss_family != AF_INET && src.ss_family != AF_INET6) || dst.ss_family != src.ss_family) {
    // not a datagram we can answer (no original destination): skip it, as empty
    NAPI_OK(env, napi_create_object(env, &out));
    napi_value v;
    NAPI_OK(env, napi_create_int32(env, -1, &v));
    NAPI_OK(env, napi_set_named_property(env, out, "length", v));
    return out;
  }
  napi_value v, srcv, dstv;
  NAPI_OK(env, napi_create_object(env, &out));
  NAPI_OK(env, napi_create_int32(env, (int32_t)n, &v));
  NAPI_OK(env, napi_set_named_property(env, out, "length", v));
  NAPI_OK(env, napi_get_boolean(env, (msg.msg_flags & MSG_TRUNC) != 0, &v));
  NAPI_OK(env, napi_set_named_property(env, out, "truncated", v));
  srcv = endpoint_value(env, &src);
  if (!srcv) return NULL;
  dstv = endpoint_value(env, &dst);
  if (!dstv) return NULL;
  NAPI_OK(env, napi_set_named_property(env, out, "src", srcv));
  NAPI_OK(env, napi_set_named_property(env, out, "dst", dstv));
  return out;
}

/**
 * A raw socket of the family argv[0] names (4 or 6) for sending from any address (IP(V6)_TRANSPARENT),
 * which receives nothing: a raw socket gets a copy of every datagram of its protocol the host
 * receives, so a drop-all filter is attached and locked. sndbuf 0: the kernel's default.
 */
static napi_value send_only_raw_socket(napi_env env, napi_callback_info info, const char* usage, int proto4, int proto6, int sndbuf) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int family;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", usage);
    return NULL;
  }
  if (!arg_family(env, argv[0], &family)) return NULL;
  int fd = family == 6 ? socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto6)
                       : socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto4);
  if (fd < 0) {
    throw_errno(env, errno, "socket(SOCK_RAW)");
    return NULL;
  }
  struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_fprog prog = {.len = 1, .filter = drop_all};
  int one = 1;
  const char* step = "setsockopt(SO_ATTACH_FILTER)";
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) goto fail;
  step = "setsockopt(SO_LOCK_FILTER)";
  if (setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof one) != 0) goto fail;
  step = "setsockopt(IP_TRANSPARENT)";
  if (set_transparent(fd, family) != 0) goto fail;
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  napi_value v;
  NAPI_OK(env, napi_create_int32(env, fd, &v));
  return v;
fail: {
  int e = errno;
  close(fd);
  throw_errno(env, e, step);
  return NULL;
}
}

static napi_value UdpReplySocket(napi_env env, napi_callback_info info) {
  return send_only_raw_socket(env, info, "udpReplySocket(family)", IPPROTO_UDP, IPPROTO_UDP, 4 << 20);
}

static uint32_t csum_add(uint32_t sum, const uint8_t* p, size_t n) {
  for (; n > 1; p += 2, n -= 2) sum += (uint32_t)((p[0] << 8) | p[1]);
  if (n) sum += (uint32_t)(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

static napi_value UdpSendFrom(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "udpSendFrom(fd, buf, srcAddress, srcPort, dstAddress, dstPort)");
    return NULL;
  }
  int64_t fd;
  uint8_t* data;
  size_t data_len;
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  if (!arg_typed(env, argv[1], napi_uint8_array, "buf", (void**)&data, &data_len)) return NULL;
  struct sockaddr_storage local;
  socklen_t llen = sizeof local;
  if (getsockname((int)fd, (struct sockaddr*)&local, &llen) != 0) {
    throw_errno(env, errno, "getsockname");
    return NULL;
  }
  int family = local.ss_family == AF_INET6 ? 6 : 4;
  struct sockaddr_storage src, dst;
  socklen_t slen, dlen;
  if (!arg_endpoint(env, argv[2], argv[3], family, &src, &slen)) return NULL;
  if (!arg_endpoint(env, argv[4], argv[5], family, &dst, &dlen)) return NULL;
  if (data_len > 65535 - 8) {
    throw_errno(env, EMSGSIZE, "sendmsg");
    return NULL;
  }
  uint8_t hdr[8];
  uint16_t ulen = (uint16_t)(data_len + 8);
  uint32_t sum = 0;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_control = u.buf;
  struct cmsghdr* c;
  if (family == 6) {
    struct sockaddr_in6* s6 = (struct sockaddr_in6*)&src;
    struct sockaddr_in6* d6 = (struct sockaddr_in6*)&dst;
    memcpy(hdr, &s6->sin6_port, 2);
    memcpy(hdr + 2, &d6->sin6_port, 2);
    uint8_t pseudo[40] = {0};
    memcpy(pseudo, &s6->sin6_addr, 16);
    memcpy(pseudo + 16, &d6->sin6_addr, 16);
    pseudo[34] = (uint8_t)(ulen >> 8);
    pseudo[35] = (uint8_t)ulen;
    pseudo[39] = IPPROTO_UDP;
    sum = csum_add(sum, pseudo, sizeof pseudo);
    msg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
    struct in6_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi6_addr = s6->sin6_addr;
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    d6->sin6_port = 0;  // a raw socket takes 0 or its protocol here
  } else {
    struct sockaddr_in* s4 = (struct sockaddr_in*)&src;
    struct sockaddr_in* d4 = (struct sockaddr_in*)&dst;
    memcpy(hdr, &s4->sin_port, 2);
    memcpy(hdr + 2, &d4->sin_port, 2);
    uint8_t pseudo[12] = {0};
    memcpy(pseudo, &s4->sin_addr, 4);
    memcpy(pseudo + 4, &d4->sin_addr, 4);
    pseudo[9] = IPPROTO_UDP;
    pseudo[10] = (uint8_t)(ulen >> 8);
    pseudo[11] = (uint8_t)ulen;
    sum = csum_add(sum, pseudo, sizeof pseudo);
    msg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi_spec_dst = s4->sin_addr;
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    d4->sin_port = 0;
  }
  hdr[4] = (uint8_t)(ulen >> 8);
  hdr[5] = (uint8_t)ulen;
  hdr[6] = hdr[7] = 0;
  sum = csum_add(sum, hdr, 8);
  // the payload's sum: an odd-length header never precedes it, so 16-bit words line up
  sum = csum_add(sum, data, data_len);
  uint16_t check = (uint16_t)~sum;
  if (check == 0) check = 0xffff;  // 0 means "no checksum" (and is illegal in IPv6)
  hdr[6] = (uint8_t)(check >> 8);
  hdr[7] = (uint8_t)check;
  struct iovec iov[2] = {{.iov_base = hdr, .iov_len = 8}, {.iov_base = data, .iov_len = data_len}};
  msg.msg_name = &dst;
  msg.msg_namelen = dlen;
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  int tries = 0;
  do n = sendmsg((int)fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  napi_value v;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      NAPI_OK(env, napi_create_int32(env, -1, &v));
      return v;
    }
    throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  NAPI_OK(env, napi_create_int32(env, (int32_t)(n >= 8 ? n - 8 : 0), &v));
  return v;
}

// icmpReplySocket(family) -> fd
//     A raw ICMP / ICMPv6 socket with IP(V6)_TRANSPARENT and the same locked
//     drop-all filter: it sends errors from addresses that are not this host's.
// udpPortUnreachable(fd, clientAddress, clientPort, dstAddress, dstPort, udpLength) -> bytes | -1
//     ICMP port unreachable (ICMPv6 port unreachable) from dst to the client,
//     quoting the headers of the client's datagram (client -> dst, udpLength
//     bytes of UDP) as the kernel would, so the client's socket finds it and
//     fails with ECONNREFUSED. The ICMPv6 checksum is the kernel's.
static napi_value IcmpReplySocket(napi_env env, napi_callback_info info) {
  return send_only_raw_socket(env, info, "icmpReplySocket(family)", IPPROTO_ICMP, IPPROTO_ICMPV6, 0);
}

static napi_value UdpPortUnreachable(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "udpPortUnreachable(fd, clientAddress, clientPort, dstAddress, dstPort, udpLength)");
    return NULL;
  }
  int64_t fd, ulen64;
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  struct sockaddr_storage local;
  socklen_t llen = sizeof local;
  if (getsockname((int)fd, (struct sockaddr*)&local, &llen) != 0) {
    throw_errno(env, errno, "getsockname");
    return NULL;
  }
  int family = local.ss_family == AF_INET6 ? 6 : 4;
  struct sockaddr_storage client, dst;
  socklen_t clen, dlen;
  if (!arg_endpoint(env, argv[1], argv[2], family, &client, &clen)) return NULL;
  if (!arg_endpoint(env, argv[3], argv[4], family, &dst, &dlen)) return NULL;
  if (!arg_int(env, argv[5], "udpLength", 8, 65535, &ulen64)) return NULL;
  uint16_t ulen = (uint16_t)ulen64;
  uint8_t msg_buf[8 + 40 + 8];
  memset(msg_buf, 0, sizeof msg_buf);
  size_t mlen;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_control = u.buf;
  struct cmsghdr* c;
  struct sockaddr_storage to;  // the ICMP goes to the client
  memcpy(&to, &client, sizeof to);
  if (family == 6) {
    struct sockaddr_in6* c6 = (struct sockaddr_in6*)&client;
    struct sockaddr_in6* d6 = (struct sockaddr_in6*)&dst;
    msg_buf[0] = 1;  // destination unreachable
    msg_buf[1] = 4;  // port unreachable
    uint8_t* ip = msg_buf + 8;
    ip[0] = 0x60;
    ip[4] = (uint8_t)(ulen >> 8);
    ip[5] = (uint8_t)ulen;
    ip[6] = IPPROTO_UDP;
    ip[7] = 64;
    memcpy(ip + 8, &c6->sin6_addr, 16);
    memcpy(ip + 24, &d6->sin6_addr, 16);
    uint8_t* udp = ip + 40;
    memcpy(udp, &c6->sin6_port, 2);
    memcpy(udp + 2, &d6->sin6_port, 2);
    udp[4] = (uint8_t)(ulen >> 8);
    udp[5] = (uint8_t)ulen;
    mlen = 8 + 40 + 8;
    msg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
    struct in6_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi6_addr = d6->sin6_addr;
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    ((struct sockaddr_in6*)&to)->sin6_port = 0;
  } else {
    struct sockaddr_in* c4 = (struct sockaddr_in*)&client;
    struct sockaddr_in* d4 = (struct sockaddr_in*)&dst;
    msg_buf[0] = 3;  // destination unreachable
    msg_buf[1] = 3;  // port unreachable
    uint8_t* ip = msg_buf + 8;
    uint16_t tot = (uint16_t)(ulen64 + 20 > 65535 ? 65535 : ulen64 + 20);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    memcpy(ip + 12, &c4->sin_addr, 4);
    memcpy(ip + 16, &d4->sin_addr, 4);
    uint16_t ipsum = (uint16_t)~csum_add(0, ip, 20);
    ip[10] = (uint8_t)(ipsum >> 8);
    ip[11] = (uint8_t)ipsum;
    uint8_t* udp = ip + 20;
    memcpy(udp, &c4->sin_port, 2);
    memcpy(udp + 2, &d4->sin_port, 2);
    udp[4] = (uint8_t)(ulen >> 8);
    udp[5] = (uint8_t)ulen;
    mlen = 8 + 20 + 8;
    uint16_t sum = (uint16_t)~csum_add(0, msg_buf, mlen);
    msg_buf[2] = (uint8_t)(sum >> 8);
    msg_buf[3] = (uint8_t)sum;
    msg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi_spec_dst = d4->sin_addr;
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    ((struct sockaddr_in*)&to)->sin_port = 0;
  }
  struct iovec iov = {.iov_base = msg_buf, .iov_len = mlen};
  msg.msg_name = &to;
  msg.msg_namelen = clen;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  int tries = 0;
  do n = sendmsg((int)fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  napi_value v;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      NAPI_OK(env, napi_create_int32(env, -1, &v));
      return v;
    }
    throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  NAPI_OK(env, napi_create_int32(env, (int32_t)n, &v));
  return v;
}

// ---------------------------------------------------------------- fd passing

static napi_value SocketPair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    throw_errno(env, errno, "socketpair");
    return NULL;
  }
  napi_value arr, v;
  NAPI_OK(env, napi_create_array_with_length(env, 2, &arr));
  for (uint32_t i = 0; i < 2; i++) {
    NAPI_OK(env, napi_create_int32(env, sv[i], &v));
    NAPI_OK(env, napi_set_element(env, arr, i, v));
  }
  return arr;
}

static napi_value SendFd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t sock, fd;
  if (argc < 2 || !arg_int(env, argv[0], "socketFd", 0, INT32_MAX, &sock) || !arg_int(env, argv[1], "fd", 0, INT32_MAX, &fd)) return NULL;
  char byte = 'T';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int f = (int)fd;
  memcpy(CMSG_DATA(c), &f, sizeof f);
  ssize_t n;
  int tries = 0;
  do n = sendmsg((int)sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  if (n < 0) {
    throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  napi_value undef;
  NAPI_OK(env, napi_get_undefined(env, &undef));
  return undef;
}

static napi_value RecvFd(napi_env env, napi_callback_info info) {
  int64_t sock;
  if (!fd_arg(env, info, "socketFd", &sock)) return NULL;
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n = recvmsg((int)sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  int fd = -1;
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    throw_errno(env, errno, "recvmsg");
    return NULL;
  }
  if (n == 0) {
    throw_errno(env, EPIPE, "recvmsg");
    return NULL;
  }
  if (n > 0) {
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      throw_errno(env, EPROTO, "recvmsg: no fd passed");
      return NULL;
    }
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
  }
  napi_value v;
  NAPI_OK(env, napi_create_int32(env, fd, &v));
  return v;
}

// ---------------------------------------------------------------- module

static napi_value Init(napi_env env, napi_value exports) {
  napi_value v;
#define FN(js, c)                                                             \
  NAPI_OK(env, napi_create_function(env, js, NAPI_AUTO_LENGTH, c, NULL, &v)); \
  NAPI_OK(env, napi_set_named_property(env, exports, js, v));
  FN("open", Open)
  FN("createReader", CreateReader)
  FN("writeBatch", WriteBatch)
  FN("originalDst", OriginalDst)
  FN("transparentListener", TransparentListener)
  FN("socketPair", SocketPair)
  FN("sendFd", SendFd)
  FN("recvFd", RecvFd)
  FN("watchReadable", CreateWatcher)
  FN("transparentUdp", TransparentUdp)
  FN("udpRecv", UdpRecv)
  FN("udpReplySocket", UdpReplySocket)
  FN("udpSendFrom", UdpSendFrom)
  FN("icmpReplySocket", IcmpReplySocket)
  FN("udpPortUnreachable", UdpPortUnreachable)
  FN("netlinkOpen", NetlinkOpen)
  FN("sockDiagOpen", SockDiagOpen)
#undef FN
  NAPI_OK(env, napi_create_int32(env, IFF_MULTI_QUEUE, &v));
  NAPI_OK(env, napi_set_named_property(env, exports, "IFF_MULTI_QUEUE", v));
  NAPI_OK(env, napi_create_int32(env, IFF_VNET_HDR, &v));
  NAPI_OK(env, napi_set_named_property(env, exports, "IFF_VNET_HDR", v));
  if (!offload_register(env, exports)) return NULL;
  if (!steering_register(env, exports)) return NULL;
  if (!tx_thread_register(env, exports)) return NULL;
  if (!upstream_socket_register(env, exports)) return NULL;
  return exports;
}

#else  // not Linux: the module loads, and says why it cannot work.

static napi_value Init(napi_env env, napi_value exports) {
  napi_value v;
  napi_get_boolean(env, true, &v);
  napi_set_named_property(env, exports, "unsupported", v);
  return exports;
}

#endif

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
