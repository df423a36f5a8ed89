// Writing a slab of packets to a TUN fd, one write() per packet: the loop that
// writeBatch (tun.c, on the JS thread) and the writer thread (tx-thread.c) share.
#pragma once
#include <stdint.h>

typedef struct tun_write_result {
  uint32_t written;  // packets the kernel took
  uint64_t bytes;    // their bytes (as in lengths[], header included)
  int fatal;         // 0, or the errno that makes the fd unusable (EBADF, EPIPE, ...): the rest was not tried
} tun_write_result_t;

// Slot i = slab[i*slot, i*slot + lengths[i]). Stops at EAGAIN/ENOBUFS/EIO (the rest
// would fail too), skips a packet the kernel rejects (EINVAL/EFAULT/EMSGSIZE) or
// one whose length is 0 or above slot. Retries EINTR a few times.
tun_write_result_t tun_write_packets(int fd, const uint8_t* slab, const uint32_t* lengths, uint32_t count, uint32_t slot);
