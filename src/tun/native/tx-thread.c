// tunsteer_tun, writer thread part: the TUN write()s off the JavaScript thread.
//
// A write() to a TUN runs the local kernel's whole receive path for that packet
// (IP and TCP input, socket wake-ups) inside the syscall: a quarter of the data
// plane's busy time in profiles (docs/DECISIONS.md "TUN writes"). A thread per fd
// does those writes, so that work runs on another core while JS goes on.
//
//   createTxThread(fd, slabs, lengths, slotSize, capacity[, inlineBytes]) -> txThread
//       slabs[b] (a Buffer) and lengths[b] (a Uint32Array) are bank b of a ring:
//       capacity slots of slotSize bytes each, as writeBatch takes them. The
//       thread holds references to them until close(). inlineBytes (default 0):
//       a bank of at most that many bytes, submitted while nothing is queued, is
//       written right away on the calling thread: a small reply costs one write,
//       not a wake-up of the thread and a trip to the other core.
//   txThread.submit(bank, count) -> count
//       Hands slots [0, count) of bank (the next in ring order) to the thread and
//       returns once the bank after it is free to fill: when the ring is full the
//       JS thread waits for the writer (a stall, counted), so no packet is dropped
//       for lack of room and the order per fd is the order of submit(). Throws the
//       errno of an earlier write that made the fd unusable (EBADF, ...), as
//       writeBatch throws; nothing is queued then.
//   txThread.close()
//       Writes what is queued, stops and joins the thread, drops the references;
//       idempotent. Close the fd after this. Also done when the JS environment
//       (a worker thread) goes away, and when the object is collected.
//   txThread.stats() -> { packets, bytes, drops, dropBytes, submits, wakes, stalls, stallMs, inline }
//       What the thread wrote and dropped (EAGAIN/ENOBUFS/EIO stop a bank: its
//       rest is dropped, as writeBatch does), how often it was woken from sleep,
//       and how often and how long submit() waited for a free bank.
//
// The thread sleeps on a condition variable when the ring is empty (no polling:
// an idle gateway stays idle) and is signalled only when it sleeps.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <stdbool.h>
#include "tx-thread.h"

#ifdef __linux__

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "errno-error.h"
#include "napi-args.h"
#include "tun-write.h"

#define MAX_BANKS 64
#define WRITER_STACK (256 * 1024)

typedef struct txq {
  napi_env env;
  int fd;
  uint32_t banks, slot, capacity;
  uint64_t inline_max;  // inlineBytes
  uint8_t* slab[MAX_BANKS];
  uint32_t* lengths[MAX_BANKS];
  napi_ref slab_ref[MAX_BANKS], lengths_ref[MAX_BANKS];
  uint32_t count[MAX_BANKS];  // packets submitted in each queued bank

  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t work;   // the writer waits here for a bank
  pthread_cond_t freed;  // submit() waits here for a free bank
  // Under mu:
  uint32_t head;    // the bank the writer takes next
  uint32_t tail;    // the bank submit() takes next
  uint32_t queued;  // banks submitted, not yet written
  bool stop, sleeping, waiting;
  int fatal;  // the errno that made the fd unusable; later banks are dropped
  uint64_t packets, bytes, drops, drop_bytes, submits, wakes, stalls, stall_ns, inlined;

  // JS thread only:
  bool started, closed, hooked, sync_ready;
} txq_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Bytes of the packets a write may take (drops' bytes are these less what was written).
static uint64_t bank_bytes(const txq_t* q, uint32_t b, uint32_t n) {
  uint64_t all = 0;
  for (uint32_t i = 0; i < n; i++)
    if (q->lengths[b][i] <= q->slot) all += q->lengths[b][i];
  return all;
}

// Under mu: what a bank's write did.
static void account(txq_t* q, uint32_t n, uint64_t all, tun_write_result_t w) {
  q->packets += w.written;
  q->bytes += w.bytes;
  q->drops += n - w.written;
  q->drop_bytes += all - w.bytes;
  if (w.fatal && !q->fatal) q->fatal = w.fatal;
}

static void* writer_main(void* arg) {
  txq_t* q = (txq_t*)arg;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (q->queued == 0 && !q->stop) {
      q->sleeping = true;
      pthread_cond_wait(&q->work, &q->mu);
      q->sleeping = false;
      q->wakes++;
    }
    if (q->queued == 0) break;  // stopping, and everything written
    uint32_t b = q->head, n = q->count[b];
    bool dead = q->fatal != 0;
    pthread_mutex_unlock(&q->mu);

    // The bank is this thread's until head moves on.
    tun_write_result_t w = {0, 0, 0};
    if (!dead) w = tun_write_packets(q->fd, q->slab[b], q->lengths[b], n, q->slot);
    uint64_t all = w.written < n ? bank_bytes(q, b, n) : w.bytes;

    pthread_mutex_lock(&q->mu);
    account(q, n, all, w);
    q->head = (b + 1) % q->banks;
    q->queued--;
    if (q->waiting) pthread_cond_signal(&q->freed);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

// Stops and joins the writer (after it wrote what was queued) and drops the
// references when the environment still runs. Idempotent; JS thread only.
static void txq_shutdown(txq_t* q, bool release_refs) {
  if (q->closed) return;
  q->closed = true;
  if (q->started) {
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    q->started = false;
  }
  if (release_refs) {
    for (uint32_t b = 0; b < q->banks; b++) {
      if (q->slab_ref[b]) napi_delete_reference(q->env, q->slab_ref[b]);
      if (q->lengths_ref[b]) napi_delete_reference(q->env, q->lengths_ref[b]);
      q->slab_ref[b] = q->lengths_ref[b] = NULL;
    }
  }
}

// A worker thread's environment going away: join before its buffers are freed.
static void on_env_cleanup(void* arg) {
  txq_t* q = (txq_t*)arg;
  q->hooked = false;
  txq_shutdown(q, false);
}

static void txq_free(txq_t* q) {
  if (q->hooked) napi_remove_env_cleanup_hook(q->env, on_env_cleanup, q);
  if (q->sync_ready) {
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->freed);
  }
  free(q);
}

static void txq_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  txq_t* q = (txq_t*)data;
  txq_shutdown(q, q->hooked);  // without the hook the environment is being torn down
  txq_free(q);
}

static txq_t* unwrap_txq(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  return (txq_t*)arg_this(env, info, argc, argv, "TUN writer thread");
}

static napi_value Submit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  txq_t* q = unwrap_txq(env, info, &argc, argv);
  if (!q) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "submit(bank, count)");
    return NULL;
  }
  int64_t bank, count;
  if (!arg_int(env, argv[0], "bank", 0, (int64_t)q->banks - 1, &bank)) return NULL;
  if (!arg_int(env, argv[1], "count", 1, (int64_t)q->capacity, &count)) return NULL;
  if (q->closed) {
    napi_throw_error(env, "ERR_TUN_CLOSED", "TUN writer thread is closed");
    return NULL;
  }
  pthread_mutex_lock(&q->mu);
  if (q->fatal) {
    int e = q->fatal;
    pthread_mutex_unlock(&q->mu);
    throw_errno(env, e, "write");
    return NULL;
  }
  if ((uint32_t)bank != q->tail) {
    uint32_t want = q->tail;
    pthread_mutex_unlock(&q->mu);
    char m[96];
    snprintf(m, sizeof m, "submit: bank %u out of ring order, the next is %u", (unsigned)bank, (unsigned)want);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", m);
    return NULL;
  }
  q->submits++;
  uint64_t all;
  if (q->queued == 0 && q->inline_max > 0 && (all = bank_bytes(q, (uint32_t)bank, (uint32_t)count)) <= q->inline_max) {
    // Nothing queued, so the writer touches no bank: write here, in order, and move both ends on.
    q->tail = q->head = (q->tail + 1) % q->banks;
    q->inlined++;
    pthread_mutex_unlock(&q->mu);
    tun_write_result_t w = tun_write_packets(q->fd, q->slab[bank], q->lengths[bank], (uint32_t)count, q->slot);
    if (w.fatal) {
      // Thrown, so the caller counts the bank as dropped (as writeBatch's callers do): only the errno stays.
      pthread_mutex_lock(&q->mu);
      if (!q->fatal) q->fatal = w.fatal;
      pthread_mutex_unlock(&q->mu);
      throw_errno(env, w.fatal, "write");
      return NULL;
    }
    pthread_mutex_lock(&q->mu);
    account(q, (uint32_t)count, all, w);
    pthread_mutex_unlock(&q->mu);
    // Accepted, as a queued bank is: what the write dropped is in stats().drops.
    napi_value res;
    if (napi_create_uint32(env, (uint32_t)count, &res) != napi_ok) return NULL;
    return res;
  }
  q->count[bank] = (uint32_t)count;
  q->tail = (q->tail + 1) % q->banks;
  q->queued++;
  if (q->sleeping) pthread_cond_signal(&q->work);
  if (q->queued == q->banks) {
    // The bank the caller fills next is still queued: wait for the writer (backpressure, as a blocking write).
    uint64_t t0 = now_ns();
    q->stalls++;
    q->waiting = true;
    while (q->queued == q->banks) pthread_cond_wait(&q->freed, &q->mu);
    q->waiting = false;
    q->stall_ns += now_ns() - t0;
  }
  pthread_mutex_unlock(&q->mu);
  napi_value res;
  if (napi_create_uint32(env, (uint32_t)count, &res) != napi_ok) return NULL;
  return res;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  txq_t* q = unwrap_txq(env, info, &argc, NULL);
  if (!q) return NULL;
  txq_shutdown(q, true);
  if (q->hooked) {
    napi_remove_env_cleanup_hook(env, on_env_cleanup, q);
    q->hooked = false;
  }
  return NULL;
}

static napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  txq_t* q = unwrap_txq(env, info, &argc, NULL);
  if (!q) return NULL;
  double f[9];
  pthread_mutex_lock(&q->mu);
  f[0] = (double)q->packets;
  f[1] = (double)q->bytes;
  f[2] = (double)q->drops;
  f[3] = (double)q->drop_bytes;
  f[4] = (double)q->submits;
  f[5] = (double)q->wakes;
  f[6] = (double)q->stalls;
  f[7] = (double)q->stall_ns / 1e6;
  f[8] = (double)q->inlined;
  pthread_mutex_unlock(&q->mu);
  static const char* names[9] = {"packets", "bytes", "drops", "dropBytes", "submits", "wakes", "stalls", "stallMs", "inline"};
  napi_value o, v;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  for (int i = 0; i < 9; i++) {
    if (napi_create_double(env, f[i], &v) != napi_ok || napi_set_named_property(env, o, names[i], v) != napi_ok) return NULL;
  }
  return o;
}

// Bank b's buffers, checked against slotSize and capacity, referenced for the thread's lifetime.
static bool take_bank(napi_env env, txq_t* q, uint32_t b, napi_value slabs, napi_value lengths) {
  napi_value sv, lv;
  void* slab;
  void* lens;
  size_t slab_len, lens_len;
  if (napi_get_element(env, slabs, b, &sv) != napi_ok || napi_get_element(env, lengths, b, &lv) != napi_ok) return false;
  if (!arg_typed(env, sv, napi_uint8_array, "slabs[i]", &slab, &slab_len)) return false;
  if (!arg_typed(env, lv, napi_uint32_array, "lengths[i]", &lens, &lens_len)) return false;
  if ((uint64_t)q->capacity * q->slot > slab_len || q->capacity > lens_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "capacity * slotSize exceeds a slab, or capacity its lengths");
    return false;
  }
  q->slab[b] = (uint8_t*)slab;
  q->lengths[b] = (uint32_t*)lens;
  return napi_create_reference(env, sv, 1, &q->slab_ref[b]) == napi_ok && napi_create_reference(env, lv, 1, &q->lengths_ref[b]) == napi_ok;
}

// Starts the writer with every signal blocked (the JS thread handles them).
static int start_writer(txq_t* q) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, WRITER_STACK);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&q->thread, &attr, writer_main, q);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc == 0) pthread_setname_np(q->thread, "tun-tx");
  return rc;
}

static napi_value fail(napi_env env, txq_t* q, int err, const char* syscall) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    if (err) throw_errno(env, err, syscall);
    else napi_throw_error(env, "EINTERNAL", "createTxThread failed");
  }
  txq_shutdown(q, true);
  txq_free(q);
  return NULL;
}

static napi_value CreateTxThread(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "createTxThread(fd, slabs, lengths, slotSize, capacity[, inlineBytes])");
    return NULL;
  }
  int64_t fd, slot, capacity;
  bool a1 = false, a2 = false;
  uint32_t banks = 0, nl = 0;
  if (!arg_int(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  napi_is_array(env, argv[1], &a1);
  napi_is_array(env, argv[2], &a2);
  if (a1) napi_get_array_length(env, argv[1], &banks);
  if (a2) napi_get_array_length(env, argv[2], &nl);
  if (!a1 || !a2 || banks != nl || banks < 1 || banks > MAX_BANKS) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "slabs and lengths must be arrays of the same length, 1..64");
    return NULL;
  }
  if (!arg_int(env, argv[3], "slotSize", 1, 1 << 20, &slot)) return NULL;
  if (!arg_int(env, argv[4], "capacity", 1, 1 << 16, &capacity)) return NULL;
  int64_t inline_max = 0;
  napi_valuetype t6 = napi_undefined;
  if (argc > 5) napi_typeof(env, argv[5], &t6);
  if (t6 != napi_undefined && !arg_int(env, argv[5], "inlineBytes", 0, INT32_MAX, &inline_max)) return NULL;

  txq_t* q = (txq_t*)calloc(1, sizeof *q);
  if (!q) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  q->env = env;
  q->fd = (int)fd;
  q->banks = banks;
  q->slot = (uint32_t)slot;
  q->capacity = (uint32_t)capacity;
  q->inline_max = (uint64_t)inline_max;
  if (pthread_mutex_init(&q->mu, NULL) != 0) {
    free(q);
    throw_errno(env, ENOMEM, "pthread_mutex_init");
    return NULL;
  }
  pthread_cond_init(&q->work, NULL);
  pthread_cond_init(&q->freed, NULL);
  q->sync_ready = true;
  for (uint32_t b = 0; b < banks; b++)
    if (!take_bank(env, q, b, argv[1], argv[2])) return fail(env, q, 0, NULL);

  napi_value obj, fn;
  if (napi_create_object(env, &obj) != napi_ok) return fail(env, q, 0, NULL);
#define METHOD(js, c)                                                              \
  if (napi_create_function(env, js, NAPI_AUTO_LENGTH, c, NULL, &fn) != napi_ok ||  \
      napi_set_named_property(env, obj, js, fn) != napi_ok)                        \
    return fail(env, q, 0, NULL);
  METHOD("submit", Submit)
  METHOD("close", Close)
  METHOD("stats", Stats)
#undef METHOD
  int rc = start_writer(q);
  if (rc != 0) return fail(env, q, rc, "pthread_create");
  q->started = true;
  if (napi_add_env_cleanup_hook(env, on_env_cleanup, q) != napi_ok) return fail(env, q, 0, NULL);
  q->hooked = true;
  if (napi_wrap(env, obj, q, txq_finalize, NULL, NULL) != napi_ok) {
    if (q->hooked) {
      napi_remove_env_cleanup_hook(env, on_env_cleanup, q);
      q->hooked = false;
    }
    return fail(env, q, 0, NULL);
  }
  return obj;
}

bool tx_thread_register(napi_env env, napi_value exports) {
  napi_value v;
  return napi_create_function(env, "createTxThread", NAPI_AUTO_LENGTH, CreateTxThread, NULL, &v) == napi_ok &&
         napi_set_named_property(env, exports, "createTxThread", v) == napi_ok;
}

#else

bool tx_thread_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}

#endif
