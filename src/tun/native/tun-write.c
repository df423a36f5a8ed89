// See tun-write.h.
#define _GNU_SOURCE
#include "tun-write.h"
#include <errno.h>
#include <stddef.h>
#include <unistd.h>

// Bounded retries of a write interrupted by a signal.
#define EINTR_RETRIES 8

tun_write_result_t tun_write_packets(int fd, const uint8_t* slab, const uint32_t* lengths, uint32_t count, uint32_t slot) {
  tun_write_result_t r = {0, 0, 0};
  for (uint32_t i = 0; i < count; i++) {
    uint32_t len = lengths[i];
    if (len == 0 || len > slot) continue;  // not a packet: a drop
    ssize_t k;
    int tries = 0;
    do {
      k = write(fd, slab + (size_t)i * (size_t)slot, len);
    } while (k < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
    if (k >= 0) {
      r.written++;
      r.bytes += len;
      continue;
    }
    int e = errno;
    if (e == EINVAL || e == EFAULT || e == EMSGSIZE) continue;                            // this packet only
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EIO || e == EINTR) break;  // all would fail
    r.fatal = e;
    break;
  }
  return r;
}
