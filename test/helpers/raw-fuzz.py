#!/usr/bin/env python3
"""Writes packets, byte for byte, into a TUN device from its namespace: an
AF_PACKET socket bound to the device transmits each one on it, which is what
the gateway reading the TUN receives (no routing, no kernel fix-ups: bad IP
checksums, lengths and versions arrive as generated). Run inside the
namespace that holds the TUN.

The packets come from a file of records: a 2-byte big-endian length, then the
packet (test/helpers/packet-fuzzer.ts writes them). Sending is paced by the
device's own counters: at most WINDOW packets may wait in the TUN's queue
(sent minus what the gateway read, tx_packets, minus what the queue dropped,
tx_dropped), so however slow the gateway is on a busy machine the queue is
not overrun. Bounded in time.

usage: raw-fuzz.py FILE IFNAME [WINDOW] [MAX_SECONDS]
prints: {"sent": N, "failed": N, "seconds": S, "waits": N}
"""
import json, socket, struct, sys, time

path, ifname = sys.argv[1], sys.argv[2]
window = int(sys.argv[3]) if len(sys.argv) > 3 else 256
max_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
ETH_P_IP = 0x0800
BURST = 16


def counter(name):
    with open(f'/sys/class/net/{ifname}/statistics/{name}') as f:
        return int(f.read())


def left_device():
    return counter('tx_packets') + counter('tx_dropped')


with open(path, 'rb') as f:
    data = f.read()
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
s.bind((ifname, ETH_P_IP))
sent = failed = waits = 0
start = time.monotonic()
base = left_device()
off = 0
timed_out = False
while off + 2 <= len(data) and not timed_out:
    # the namespace's own kernel also queues a few packets: they only make us wait a little longer
    while sent - (left_device() - base) > window - BURST:
        waits += 1
        time.sleep(0.0005)
        if time.monotonic() - start > max_seconds:
            timed_out = True
            break
    for _ in range(BURST):
        if off + 2 > len(data) or timed_out:
            break
        (n,) = struct.unpack_from('!H', data, off)
        pkt = data[off + 2:off + 2 + n]
        off += 2 + n
        try:
            s.sendto(pkt, (ifname, ETH_P_IP))
            sent += 1
        except OSError:
            failed += 1
print(json.dumps({'sent': sent, 'failed': failed, 'seconds': round(time.monotonic() - start, 2), 'waits': waits}))
