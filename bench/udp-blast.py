#!/usr/bin/env python3
# UDP down the relay as fast as a sender can: a blaster in the servers
# namespace answers a client's "GO" with datagrams to wherever the GO came
# from (the gateway's upstream socket, or the client itself on the kernel
# path), and a sink counts what arrives. Python's tight send() loop outruns a
# node dgram loop (bench/tun-pps.ts).
#   python3 udp-blast.py server HOST PORT            serves GOs for at most 600 s
#   python3 udp-blast.py sink HOST PORT SIZE SECONDS  one GO; prints one JSON line
# The server sends SIZE-byte datagrams for SECONDS (at most 10, and at most
# 5,000,000 datagrams), then after 0.5 s "END <sent>" ten times.
import json
import socket
import sys
import time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)

if mode == 'server':
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    s.bind((host, port))
    print(json.dumps({'listening': '%s:%d' % (host, port)}), flush=True)
    life = time.monotonic() + 600
    s.settimeout(5)
    while time.monotonic() < life:
        try:
            m, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        if not m.startswith(b'GO '):
            continue
        size, secs = (int(x) for x in m[3:].split())
        p = b'Z' * size
        n = 0
        end = time.monotonic() + min(secs, 10)
        while time.monotonic() < end and n < 5_000_000:
            for _ in range(64):
                try:
                    s.sendto(p, peer)
                    n += 1
                except OSError:
                    pass
        time.sleep(0.5)  # the relay's queues drain first: an END behind a full one is lost
        for _ in range(10):
            s.sendto(b'END %d' % n, peer)
            time.sleep(0.1)
else:
    size, secs = int(sys.argv[4]), int(sys.argv[5])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.connect((host, port))
    s.settimeout(1)
    recv = nbytes = 0
    sent = None
    first = last = None
    for _ in range(3):
        s.send(b'GO %d %d' % (size, secs))
        try:
            m = s.recv(70000)
            first = last = time.monotonic()
            if m.startswith(b'END '):
                sent = int(m[4:])
            else:
                recv, nbytes = 1, len(m)
            break
        except socket.timeout:
            continue
    s.settimeout(2)
    deadline = time.monotonic() + secs + 15
    while sent is None and first is not None and time.monotonic() < deadline:
        try:
            m = s.recv(70000)
        except socket.timeout:
            break
        if m.startswith(b'END '):
            sent = int(m[4:])
            break
        recv += 1
        nbytes += len(m)
        last = time.monotonic()
    print(json.dumps({'recv': recv, 'bytes': nbytes, 'sent': sent, 'seconds': (last - first) if first else 0}))
