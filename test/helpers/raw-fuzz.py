#!/usr/bin/env python3
"""Seeded malformed IPv4 traffic for a running gateway, sent through a raw
socket from inside the client namespace so the kernel routes it into the TUN.
The kernel fills in the IPv4 total length and checksum (raw(7)); everything
above IP is ours: random and truncated UDP and TCP headers, bad lengths, bad
checksums, bad TCP options, and garbage DNS queries to port 53.
Destinations are test hosts only (203.0.113.0/24).

usage: raw-fuzz.py SEED COUNT SRC_IP
"""
import random, socket, struct, sys

seed, count, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(seed)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)

def ip_header(proto, dst, payload_len):
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + payload_len, rnd.randrange(1, 65535), 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))

def udp(dst_port, body, bad_len=False, checksum=None):
    length = len(body) + 8
    if bad_len:
        length = rnd.choice([0, 7, length + rnd.randrange(1, 500), 65535])
    ck = rnd.randrange(0, 65536) if checksum is None else checksum
    return struct.pack('!HHHH', rnd.randrange(1024, 65535), dst_port, length & 0xffff, ck) + body

def dns_garbage():
    kind = rnd.randrange(4)
    if kind == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 80)))
    hdr = struct.pack('!HHHHHH', rnd.randrange(65536), 0x0100, rnd.randrange(0, 5), rnd.randrange(0, 3), 0, 0)
    if kind == 1:  # labels running past the end
        return hdr + bytes([63]) + b'a' * rnd.randrange(0, 40)
    if kind == 2:  # a compression pointer loop
        return hdr + b'\xc0\x0c\x00\x01\x00\x01'
    return hdr + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 60)))

def tcp_garbage():
    kind = rnd.randrange(4)
    if kind == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 19)))  # truncated
    off = rnd.choice([0, 1, 4, 5, 8, 15])
    opts = bytes(rnd.randrange(256) for _ in range(max(0, off * 4 - 20)))
    hdr = struct.pack('!HHIIBBHHH', rnd.randrange(1024, 65535), rnd.choice([80, 7000, 22, rnd.randrange(65536)]),
                      rnd.getrandbits(32), rnd.getrandbits(32), off << 4, rnd.randrange(256), rnd.randrange(65536),
                      rnd.randrange(65536), 0)
    return hdr + opts + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))

sent = 0
for i in range(count):
    dst = '203.0.113.%d' % rnd.choice([10, 12, 53, 99])
    k = rnd.randrange(5)
    if k == 0:
        proto, body = 17, udp(53, dns_garbage(), checksum=0)  # 0: no checksum, so it reaches the DNS parser
    elif k == 1:
        proto, body = 17, udp(rnd.randrange(1, 65536), b'x' * rnd.randrange(0, 30), bad_len=True)
    elif k == 2:
        proto, body = 17, bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 8)))  # truncated UDP header
    elif k == 3:
        proto, body = 6, tcp_garbage()
    else:
        proto, body = rnd.choice([1, 47, 132, 253]), bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
    try:
        s.sendto(ip_header(proto, dst, len(body)) + body, (dst, 0))
        sent += 1
    except OSError:
        pass
print('{"sent": %d}' % sent)
