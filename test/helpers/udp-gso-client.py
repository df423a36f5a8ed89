#!/usr/bin/env python3
# A client that sends N UDP datagrams in ONE send with the UDP_SEGMENT socket
# option (Linux 4.18+, what QUIC stacks use), to the echo server of
# test/helpers/udp-hash-peer.ts:
#   python3 udp-gso-client.py HOST PORT GSO_SIZE COUNT LAST
# sends COUNT-1 datagrams of GSO_SIZE bytes and a last one of LAST bytes
# (1 <= LAST <= GSO_SIZE), each starting with its index (4 bytes, big-endian)
# followed by seeded bytes. The kernel hands the whole burst to a device with
# USO as one packet (gso_type UDP_L4) and splits it for any other; either way
# the server must receive COUNT datagrams. A plain datagram goes first and
# waits for its echo, so that the gateway's socket for the flow is open
# before the burst (it holds at most 16 datagrams of a flow while opening
# it, src/proxy/tun/udp-sessions.ts maxPending). Then it collects the
# burst's echoes (3 s with nothing new ends the wait), sends FIN and reads
# the server's summary (the first datagram included).
# Prints one JSON line: sent (length and sha256 per datagram, in order),
# echoes (the same, in arrival order), server ({n, bytes, sha256} of all it
# received, in order), sha256 (of all sent, in order), sendError.
import hashlib
import json
import random
import socket
import sys

SOL_UDP = 17
UDP_SEGMENT = 103

host, port, gso, count, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(gso * 1000 + count)
dgrams = []
for i in range(count):
    n = gso if i < count - 1 else last
    body = i.to_bytes(4, 'big') + bytes(rnd.getrandbits(8) for _ in range(max(0, n - 4)))
    dgrams.append(body[:n])
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.connect((host, port))
first = b'\xff\xff\xff\xff first, plain'
out = {
    'sent': [{'len': len(d), 'sha256': hashlib.sha256(d).hexdigest()} for d in dgrams],
    'sha256': hashlib.sha256(first + b''.join(dgrams)).hexdigest(),
    'bytes': len(first) + sum(len(d) for d in dgrams),
}
s.settimeout(3)
for _ in range(3):
    try:
        s.send(first)
        if s.recv(70000) == first:
            break
    except (socket.timeout, ConnectionRefusedError):
        continue
s.setsockopt(SOL_UDP, UDP_SEGMENT, gso)
try:
    s.send(b''.join(dgrams))
except OSError as e:
    out['sendError'] = e.strerror
echoes = []
try:
    while len(echoes) < count * 2:
        m = s.recv(70000)
        echoes.append({'len': len(m), 'sha256': hashlib.sha256(m).hexdigest()})
except (socket.timeout, ConnectionRefusedError):
    pass
out['echoes'] = echoes
# the summary: FIN as one plain datagram (the option off), three tries
s.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
for _ in range(3):
    try:
        s.send(b'FIN')
        while True:
            m = s.recv(70000)
            if m.startswith(b'{'):
                out['server'] = json.loads(m)
                break
        break
    except (socket.timeout, ConnectionRefusedError):
        continue
print(json.dumps(out))
