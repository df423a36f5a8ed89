#!/usr/bin/env python3
# What USO on write would save the gateway: the CPU of writing N UDP
# datagrams to a TUN (IFF_VNET_HDR, offloads CSUM+TSO+USO) one write each,
# against K datagrams per write as one UDP GSO packet (gso_type UDP_L4,
# gso_size = the datagram size, partial checksum) that the kernel splits.
# The writer's CPU (user + system: the kernel's delivery to the receiving
# socket runs inside the write) per datagram; a forked receiver counts what
# arrived. Run as root inside a namespace of its own (bench/uso-write.ts):
#   python3 uso-write.py TUN_NAME SIZE COUNT K...
# Prints one JSON line per K. Bounded: COUNT at most 200,000 (the receiving
# socket holds them all: 256 MB), 30 s each.
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import time

name, size, count = sys.argv[1], int(sys.argv[2]), min(int(sys.argv[3]), 200_000)
ks = [int(k) for k in sys.argv[4:]]
TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ = 0x400454CA, 0x400454D0, 0x400454D8
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6 = 0x01, 0x02, 0x04, 0x20, 0x40

fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack('i', 10))
fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6)
subprocess.run(['ip', 'addr', 'add', '198.18.0.1/30', 'dev', name], check=True)
subprocess.run(['ip', 'link', 'set', name, 'up'], check=True)
SRC, DST, SPORT, DPORT = socket.inet_aton('198.18.0.2'), socket.inet_aton('198.18.0.1'), 4433, 9999


def csum_fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ip_checksum(h):
    s = sum(struct.unpack('!10H', h))
    return (~csum_fold(s)) & 0xFFFF


def packet(k):
    """A vnet header and one IPv4/UDP packet holding k datagrams of `size` bytes."""
    ulen = 8 + k * size
    ip = bytearray(struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, 0, 0x4000, 64, 17, 0, SRC, DST))
    ip[10:12] = struct.pack('!H', ip_checksum(bytes(ip)))
    # partial checksum: the folded pseudo-header sum, not complemented (CHECKSUM_PARTIAL)
    pseudo = sum(struct.unpack('!4H', SRC + DST)) + 17 + ulen
    udp = struct.pack('!HHHH', SPORT, DPORT, ulen, csum_fold(pseudo))
    gso = k > 1
    vnet = struct.pack('<BBHHHH', 1, 5 if gso else 0, 28, size if gso else 0, 20, 6)
    return vnet + bytes(ip) + udp + b'Z' * (k * size)


for k in ks:
    r, w = os.pipe()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_RCVBUFFORCE (root): room for every datagram, so none is dropped and each costs a whole delivery
    rx.setsockopt(socket.SOL_SOCKET, 33, 256 << 20)
    rx.bind(('198.18.0.1', DPORT))
    pid = os.fork()
    if pid == 0:
        rx.settimeout(1.5)
        got = wrong = 0
        try:
            while True:
                m = rx.recv(70000)
                if len(m) == size:
                    got += 1
                else:
                    wrong += 1
        except socket.timeout:
            pass
        os.write(w, json.dumps({'got': got, 'wrong': wrong}).encode())
        os._exit(0)
    rx.close()
    time.sleep(0.2)
    p = packet(k)
    writes = count // k
    t0, c0 = time.monotonic(), time.process_time()
    end = t0 + 30
    done = 0
    for i in range(writes):
        os.write(fd, p)
        done += 1
        if (i & 1023) == 0 and time.monotonic() > end:
            break
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    os.waitpid(pid, 0)
    res = json.loads(os.read(r, 4096))
    os.close(r)
    os.close(w)
    n = done * k
    print(json.dumps({'k': k, 'datagrams': n, 'writes': done, 'cpuUsPerDatagram': cpu / n * 1e6, 'wallUsPerDatagram': wall / n * 1e6, 'received': res['got'], 'wrongSize': res['wrong']}), flush=True)
