// tunsteer_tun, steering part: which queue of a multi-queue TUN a packet goes to.
//
// The kernel's default steering (tun_automq_select_queue) uses the flow hash,
// and the flow dissector hashes an IP fragment on its addresses alone while a
// whole UDP datagram is hashed with its ports: a flow's datagrams above the MTU
// would reach another queue, so another stack worker, which relays them from
// another upstream socket (another source port). This program hashes:
//   - IPv4 TCP that is not a fragment: addresses and ports (connections spread over workers);
//   - everything else (UDP, ICMP, IPv4 fragments, all of IPv6): addresses
//     only, so every packet of a UDP flow, fragments included, reaches one
//     queue. IPv6 TCP on its ports split some uploads at MTU 65520 in e2e
//     (no_flow resets, cause not found: docs/DECISIONS.md), so not yet.
// tun.c (tun_ebpf_select_queue) takes the return value as a u16 modulo the
// number of queues. For an IFF_TUN device skb->data is the IP header when the
// program runs (no link-layer header; the packet-info and virtio-net headers
// are added at read time), which is what BPF_LD_ABS offsets count from.
//
//   tunSteeringLoads() -> boolean   the program loads here (kernel, capabilities)
//   tunSteeringAttach(fd)           load, TUNSETSTEERINGEBPF on one queue's fd (the
//                                   device keeps its reference), close the prog fd;
//                                   throws the errno of whichever step failed
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <stdbool.h>
#include "steering.h"
#include "errno-error.h"

#ifdef __linux__

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <uv.h>

// Linux 4.16.
#ifndef TUNSETSTEERINGEBPF
#define TUNSETSTEERINGEBPF _IOR('T', 224, int)
#endif

#define MAX_INSNS 128
#define NO_LABEL -1

/** A hand-assembled program: instructions and forward jumps to labels resolved at the end. */
typedef struct {
  struct bpf_insn insn[MAX_INSNS];
  int n;
  int target[MAX_INSNS];  // label each jump at that index goes to, or NO_LABEL
  int label[8];           // label -> instruction index
} prog_t;

enum { L_V4, L_V6, L_MIX, L_DROP };

static void emit(prog_t* p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm, int target) {
  p->target[p->n] = target;
  p->insn[p->n++] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}
static void here(prog_t* p, int l) { p->label[l] = p->n; }

#define K_MIX 0x9E3779B1u  // golden-ratio multiplier: spreads the words' bits
#define K_FIN 0x85EBCA6Bu  // murmur3's finaliser multiplier

static void ld_abs(prog_t* p, uint8_t size, int32_t off) { emit(p, BPF_LD | BPF_ABS | size, 0, 0, 0, off, NO_LABEL); }
/** r7 = (r7 ^ r0) * K_MIX, in 32 bits. */
static void fold(prog_t* p) {
  emit(p, BPF_ALU | BPF_XOR | BPF_X, BPF_REG_7, BPF_REG_0, 0, 0, NO_LABEL);
  emit(p, BPF_ALU | BPF_MUL | BPF_K, BPF_REG_7, 0, 0, (int32_t)K_MIX, NO_LABEL);
}
static void jump_if(prog_t* p, uint8_t op, int32_t imm, int label) { emit(p, BPF_JMP | op | BPF_K, BPF_REG_0, 0, 0, imm, label); }

static int build(prog_t* p) {
  memset(p, 0, sizeof *p);
  // LD_ABS/LD_IND read the skb in r6, network byte order turned to host order;
  // a read past the end ends the program with 0 (queue 0).
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0, NO_LABEL);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_7, 0, 0, 0, NO_LABEL);
  ld_abs(p, BPF_B, 0);
  emit(p, BPF_ALU | BPF_RSH | BPF_K, BPF_REG_0, 0, 0, 4, NO_LABEL);
  jump_if(p, BPF_JEQ, 4, L_V4);
  jump_if(p, BPF_JEQ, 6, L_V6);
  emit(p, BPF_JMP | BPF_JA, 0, 0, 0, 0, L_DROP);

  // IPv4 (RFC 791): addresses at 12 and 16, protocol at 9, flags+offset at 6.
  here(p, L_V4);
  ld_abs(p, BPF_W, 12);
  fold(p);
  ld_abs(p, BPF_W, 16);
  fold(p);
  ld_abs(p, BPF_B, 9);
  jump_if(p, BPF_JNE, 6, L_MIX);
  ld_abs(p, BPF_H, 6);
  emit(p, BPF_ALU | BPF_AND | BPF_K, BPF_REG_0, 0, 0, 0x3fff, NO_LABEL);  // MF or an offset: a fragment
  jump_if(p, BPF_JNE, 0, L_MIX);
  ld_abs(p, BPF_B, 0);
  emit(p, BPF_ALU | BPF_AND | BPF_K, BPF_REG_0, 0, 0, 0xf, NO_LABEL);
  emit(p, BPF_ALU | BPF_LSH | BPF_K, BPF_REG_0, 0, 0, 2, NO_LABEL);
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_8, BPF_REG_0, 0, 0, NO_LABEL);
  emit(p, BPF_LD | BPF_IND | BPF_W, 0, BPF_REG_8, 0, 0, NO_LABEL);  // TCP source and destination ports
  fold(p);
  emit(p, BPF_JMP | BPF_JA, 0, 0, 0, 0, L_MIX);

  // IPv6 (RFC 8200): addresses at 8..39.
  here(p, L_V6);
  for (int off = 8; off < 40; off += 4) {
    ld_abs(p, BPF_W, off);
    fold(p);
  }

  // r0 = low 16 bits of a finalised r7: tun.c keeps a u16, then takes it modulo the queues.
  here(p, L_MIX);
  emit(p, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_0, BPF_REG_7, 0, 0, NO_LABEL);
  emit(p, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_0, 0, 0, NO_LABEL);
  emit(p, BPF_ALU | BPF_RSH | BPF_K, BPF_REG_1, 0, 0, 16, NO_LABEL);
  emit(p, BPF_ALU | BPF_XOR | BPF_X, BPF_REG_0, BPF_REG_1, 0, 0, NO_LABEL);
  emit(p, BPF_ALU | BPF_MUL | BPF_K, BPF_REG_0, 0, 0, (int32_t)K_FIN, NO_LABEL);
  emit(p, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_0, 0, 0, NO_LABEL);
  emit(p, BPF_ALU | BPF_RSH | BPF_K, BPF_REG_1, 0, 0, 16, NO_LABEL);
  emit(p, BPF_ALU | BPF_XOR | BPF_X, BPF_REG_0, BPF_REG_1, 0, 0, NO_LABEL);
  emit(p, BPF_ALU | BPF_AND | BPF_K, BPF_REG_0, 0, 0, 0xffff, NO_LABEL);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0, NO_LABEL);

  here(p, L_DROP);  // neither IPv4 nor IPv6: queue 0
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0, NO_LABEL);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0, NO_LABEL);

  for (int i = 0; i < p->n; i++)
    if (p->target[i] != NO_LABEL) p->insn[i].off = (int16_t)(p->label[p->target[i]] - i - 1);
  return p->n;
}

static char verifier_log[4096];

/** The program's fd, or -errno. */
static int load(void) {
  prog_t p;
  int n = build(&p);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = (uint64_t)(uintptr_t)p.insn;
  attr.insn_cnt = (uint32_t)n;
  attr.license = (uint64_t)(uintptr_t) "GPL";
  verifier_log[0] = 0;
  attr.log_buf = (uint64_t)(uintptr_t)verifier_log;
  attr.log_size = sizeof verifier_log;
  attr.log_level = 1;
  int fd = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (fd < 0 && errno == ENOSPC) {  // log too small: retry without it, the errno is what counts
    attr.log_buf = 0;
    attr.log_size = 0;
    attr.log_level = 0;
    fd = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  }
  return fd < 0 ? -errno : fd;
}

static napi_value TunSteeringLoads(napi_env env, napi_callback_info info) {
  int fd = load();
  if (fd >= 0) close(fd);
  napi_value v;
  if (napi_get_boolean(env, fd >= 0, &v) != napi_ok) return NULL;
  return v;
}

static napi_value TunSteeringAttach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t tunFd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &tunFd) != napi_ok || tunFd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
    return NULL;
  }
  int prog = load();
  if (prog < 0) {
    throw_errno(env, -prog, "bpf(BPF_PROG_LOAD)");
    return NULL;
  }
  int rc = ioctl(tunFd, TUNSETSTEERINGEBPF, &prog);
  int err = errno;
  close(prog);  // the device holds its own reference
  if (rc < 0) {
    throw_errno(env, err, "ioctl(TUNSETSTEERINGEBPF)");
    return NULL;
  }
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

bool steering_register(napi_env env, napi_value exports) {
  napi_value v;
  if (napi_create_function(env, "tunSteeringLoads", NAPI_AUTO_LENGTH, TunSteeringLoads, NULL, &v) != napi_ok ||
      napi_set_named_property(env, exports, "tunSteeringLoads", v) != napi_ok)
    return false;
  if (napi_create_function(env, "tunSteeringAttach", NAPI_AUTO_LENGTH, TunSteeringAttach, NULL, &v) != napi_ok ||
      napi_set_named_property(env, exports, "tunSteeringAttach", v) != napi_ok)
    return false;
  return true;
}

#else

bool steering_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}

#endif
