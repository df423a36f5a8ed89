#!/usr/bin/env python3
# A UDP server that answers one request with a burst of datagrams, and its client:
#   python3 udp-burst.py server HOST PORT
#   python3 udp-burst.py client HOST PORT COUNT SIZE LAST
# The client sends "BURST COUNT SIZE LAST SEED"; the server answers with COUNT
# datagrams of SIZE bytes, the last LAST bytes, their bytes from SEED and
# their index, in ONE send with the UDP_SEGMENT socket option (the kernel
# splits it at SIZE; where that fails, one send each), so the whole burst
# lands in the receiving socket's queue at once and a reader finds many of
# them in one read loop. The client receives into a large buffer until it has
# COUNT or nothing came for 5 s; short of COUNT (a loss on a loaded machine),
# it asks again with another seed, three times at most. Prints one JSON line:
# expected and received (length and sha256 per datagram, in order) of the
# last attempt, attempts, and how the server sent.
import hashlib
import json
import socket
import sys

SOL_UDP = 17
UDP_SEGMENT = 103
SO_RCVBUFFORCE = 33


def datagram(seed, i, n):
    out = b''
    k = 0
    while len(out) < n:
        out += hashlib.sha256(f'{seed}:{i}:{k}'.encode()).digest()
        k += 1
    return out[:n]


def burst(seed, count, size, last):
    return [datagram(seed, i, size if i < count - 1 else last) for i in range(count)]


def family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def server(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    print('listening', flush=True)
    while True:
        m, peer = s.recvfrom(2048)
        parts = m.split()
        if len(parts) != 5 or parts[0] != b'BURST':
            continue
        count, size, last, seed = int(parts[1]), int(parts[2]), int(parts[3]), parts[4].decode()
        ds = burst(seed, count, size, last)
        try:
            s.setsockopt(SOL_UDP, UDP_SEGMENT, size)
            s.sendto(b''.join(ds), peer)
        except OSError:
            s.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
            for d in ds:
                s.sendto(d, peer)
        finally:
            s.setsockopt(SOL_UDP, UDP_SEGMENT, 0)


def client(host, port, count, size, last):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.connect((host, port))
    s.settimeout(5)
    out = {}
    for attempt in range(1, 4):
        seed = f'{port}-{count}-{size}-{attempt}'
        want = burst(seed, count, size, last)
        got = []
        s.send(f'BURST {count} {size} {last} {seed}'.encode())
        try:
            while len(got) < count:
                got.append(s.recv(70000))
        except (socket.timeout, ConnectionRefusedError):
            pass
        out = {
            'attempts': attempt,
            'expected': [{'len': len(d), 'sha256': hashlib.sha256(d).hexdigest()} for d in want],
            'received': [{'len': len(d), 'sha256': hashlib.sha256(d).hexdigest()} for d in got],
        }
        if len(got) >= count:
            break
    print(json.dumps(out))


if sys.argv[1] == 'server':
    server(sys.argv[2], int(sys.argv[3]))
else:
    client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
