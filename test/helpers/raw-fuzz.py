#!/usr/bin/env python3
"""Writes packets, byte for byte, into a TUN device from its namespace: an
AF_PACKET socket bound to the device transmits each one on it, which is what
the gateway reading the TUN receives (no routing, no kernel fix-ups: bad IP
checksums, lengths and versions arrive as generated). Run inside the
namespace that holds the TUN.

The packets come from a file of records: a 2-byte big-endian length, then the
packet (test/helpers/packet-fuzzer.ts writes them). Sending is paced in
bursts so the TUN's queue (500 packets) is not overrun, and bounded in time.

usage: raw-fuzz.py FILE IFNAME [BURST] [PAUSE_MS] [MAX_SECONDS]
prints: {"sent": N, "failed": N, "seconds": S}
"""
import json, socket, struct, sys, time

path, ifname = sys.argv[1], sys.argv[2]
burst = int(sys.argv[3]) if len(sys.argv) > 3 else 100
pause = (float(sys.argv[4]) if len(sys.argv) > 4 else 2.0) / 1000
max_seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
ETH_P_IP = 0x0800

with open(path, 'rb') as f:
    data = f.read()
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
s.bind((ifname, ETH_P_IP))
sent = failed = 0
start = time.monotonic()
off = 0
while off + 2 <= len(data):
    (n,) = struct.unpack_from('!H', data, off)
    pkt = data[off + 2:off + 2 + n]
    off += 2 + n
    try:
        s.sendto(pkt, (ifname, ETH_P_IP))
        sent += 1
    except OSError:
        failed += 1
    if (sent + failed) % burst == 0:
        time.sleep(pause)
        if time.monotonic() - start > max_seconds:
            break
print(json.dumps({'sent': sent, 'failed': failed, 'seconds': round(time.monotonic() - start, 2)}))
