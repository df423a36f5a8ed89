#!/usr/bin/env python3
# One end of the differential harness (test/helpers/diff/): plays a scenario's
# script as the client or the server and reports what it received and how the
# connection ended. Python, not Node: the script needs the kernel's socket
# calls exactly as written (a Node socket reads ahead into its own buffer, so
# "close with unread data" would not leave the data unread; SO_LINGER 0,
# shutdown(SHUT_WR) and FIONREAD are one call each here).
#
# Commands arrive as JSON lines on stdin; each runs in a thread of its own and
# answers one JSON line on stdout:
#   {"op":"listen","id":..,"port":P,"proto":"tcp"|"udp","bind":[addresses, UDP only],"script":S}
#       -> {"id","ready":true} then {"id","result":R}
#   {"op":"connect","id":..,"host":H,"port":P,"proto":..,"script":S}  -> {"id","result":R}
# R = {"rx": bytes received, "sha": sha256 hex of them, "end": how it ended}
# Every wait has a deadline (script "limitMs"), so nothing hangs.
import errno, fcntl, hashlib, json, random, resource, select, socket, struct, sys, termios, threading, time

out_lock = threading.Lock()


def say(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def payload(seed, index, n):
    """The bytes of phase `index` (deterministic, so both runs send the same)."""
    return random.Random(seed * 1_000_003 + index).randbytes(n)


def err_name(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


class Ended(Exception):
    def __init__(self, how):
        super().__init__(how)
        self.how = how


class Side:
    def __init__(self, sock, script, me):
        self.s = sock
        self.script = script
        self.me = me
        self.deadline = time.monotonic() + script.get("limitMs", 20000) / 1000
        self.h = hashlib.sha256()
        self.rx = 0
        self.slow = script.get("slow") == me

    def remaining(self):
        r = self.deadline - time.monotonic()
        if r <= 0:
            raise Ended("timeout")
        return r

    def recv_some(self, want):
        self.s.settimeout(self.remaining())
        try:
            d = self.s.recv(min(want, 4096 if self.slow else 1 << 20))
        except OSError as e:
            raise Ended(err_name(e))
        if d and self.slow:
            time.sleep(0.001)
        return d

    def read_exactly(self, n):
        while n > 0:
            d = self.recv_some(n)
            if not d:
                raise Ended("EOF")
            self.h.update(d)
            self.rx += len(d)
            n -= len(d)

    def read_to_end(self):
        """Reads until EOF or an error; returns how it ended."""
        try:
            while True:
                d = self.recv_some(1 << 20)
                if not d:
                    return "EOF"
                self.h.update(d)
                self.rx += len(d)
        except Ended as e:
            return e.how

    def send(self, data):
        self.s.settimeout(self.remaining())
        try:
            self.s.sendall(data)
        except OSError as e:
            raise Ended(err_name(e))

    def result(self, end):
        return {"rx": self.rx, "sha": self.h.hexdigest(), "end": end}


def play_tcp(sock, script, me):
    """Phases in order (the reader reads exactly what the writer wrote), then the ending."""
    side = Side(sock, script, me)
    end = script["end"]
    try:
        if end["kind"] == "refused":
            # only reached where a listener accepted for the missing one (redirect, tproxy)
            return side.result(side.read_to_end())
        if end["kind"] == "acceptClose":
            if me == "s":
                sock.close()
                return side.result("closed")
            return side.result(side.read_to_end())
        for i, ph in enumerate(script["phases"]):
            if ph["from"] == me:
                if ph.get("pause"):
                    time.sleep(ph["pause"] / 1000)
                side.send(payload(script["seed"], i, ph["n"]))
            else:
                side.read_exactly(ph["n"])
        x = end["who"] == me
        kind = end["kind"]
        if kind == "fin":
            if x:
                sock.shutdown(socket.SHUT_WR)
                how = side.read_to_end()  # the other side's tail, then its FIN
            else:
                how = side.read_to_end()
                if how == "EOF":
                    if end.get("tail"):
                        side.send(payload(script["seed"], 9999, end["tail"]))
                    sock.shutdown(socket.SHUT_WR)
            return side.result(how)
        if kind == "rst":
            if x:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                return side.result("sent-rst")
            return side.result(side.read_to_end())
        if kind == "unread":
            if x:
                # wait for the other side's bytes to sit unread in our socket, then close: the kernel sends RST
                while True:
                    n = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
                    if n > 0:
                        break
                    side.remaining()
                    time.sleep(0.005)
                sock.close()
                return side.result("closed-unread")
            # what fits without blocking, in one call: a second thread blocked in send() would race
            # the reader for the one ECONNRESET the kernel reports (the loser then reads EOF)
            data = payload(script["seed"], 8888, end["unread"])
            try:
                sock.send(data, socket.MSG_DONTWAIT)
            except OSError:
                pass
            return side.result(side.read_to_end())
        raise ValueError("unknown ending " + kind)
    except Ended as e:
        return side.result(e.how)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def udp_script(sock, script, me, peer=None):
    """UDP: the client sends each datagram and waits for its echo (3 tries); the server echoes."""
    deadline = time.monotonic() + script.get("limitMs", 20000) / 1000
    if me == "s":
        # one socket per address, so each echo leaves from the address the client sent to
        # (a socket bound to :: would answer from the route's source address, which a
        # connected client socket does not accept)
        # poll, not select: with hundreds of scenarios at once the descriptors pass select()'s 1024
        by_fd = {u.fileno(): u for u in sock}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        n = 0
        idle_until = deadline
        while n < len(script["datagrams"]) * 3 and time.monotonic() < min(deadline, idle_until):
            events = poller.poll(max(10, int((min(deadline, idle_until) - time.monotonic()) * 1000)))
            # the client is done once it has been quiet for a while after its last datagram
            idle_until = time.monotonic() + 3 * script.get("waitMs", 1000) / 1000 + 1
            for fd, _ in events:
                r = by_fd[fd]
                try:
                    d, addr = r.recvfrom(70000)
                    r.sendto(d, addr)
                except OSError:
                    pass
                n += 1
        return None
    h = hashlib.sha256()
    got = []
    for i, size in enumerate(script["datagrams"]):
        data = payload(script["seed"], i, size)
        how = "lost"
        for _ in range(3):
            try:
                sock.send(data)
                sock.settimeout(script.get("waitMs", 1000) / 1000)
                while True:
                    d = sock.recv(70000)
                    if d == data:
                        how = "echoed"
                        break
            except socket.timeout:
                continue
            except OSError as e:
                how = err_name(e)
            break
        got.append(how)
        if how == "echoed":
            h.update(data)
        if how not in ("echoed", "lost"):
            break
    return {"rx": sum(s for s, g in zip(script["datagrams"], got) if g == "echoed"), "sha": h.hexdigest(), "end": ",".join(got)}


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def do_listen(cmd):
    proto = cmd.get("proto", "tcp")
    script = cmd["script"]
    if proto == "udp":
        socks = []
        for addr in cmd["bind"]:
            u = socket.socket(family_of(addr), socket.SOCK_DGRAM)
            u.bind((addr, cmd["port"]))
            socks.append(u)
        say({"id": cmd["id"], "ready": True})
        try:
            udp_script(socks, script, "s")
        finally:
            for u in socks:
                u.close()
        say({"id": cmd["id"], "result": {"rx": 0, "sha": "", "end": "done"}})
        return
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", cmd["port"]))
    s.listen(16)
    say({"id": cmd["id"], "ready": True})
    s.settimeout(script.get("limitMs", 20000) / 1000)
    try:
        c, _ = s.accept()
    except OSError as e:
        s.close()
        say({"id": cmd["id"], "result": {"rx": 0, "sha": hashlib.sha256().hexdigest(), "end": "no-connection:" + err_name(e)}})
        return
    s.close()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    say({"id": cmd["id"], "result": play_tcp(c, script, "s")})


def do_connect(cmd):
    proto = cmd.get("proto", "tcp")
    script = cmd["script"]
    fam = family_of(cmd["host"])
    if proto == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            s.connect((cmd["host"], cmd["port"]))
            say({"id": cmd["id"], "result": udp_script(s, script, "c")})
        finally:
            s.close()
        return
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(script.get("connectMs", 10000) / 1000)
    try:
        s.connect((cmd["host"], cmd["port"]))
    except OSError as e:
        s.close()
        say({"id": cmd["id"], "result": {"rx": 0, "sha": hashlib.sha256().hexdigest(), "end": err_name(e)}})
        return
    say({"id": cmd["id"], "result": play_tcp(s, script, "c")})


def guarded(fn, cmd):
    try:
        fn(cmd)
    except Exception as e:  # report, never die: the other scenarios go on
        say({"id": cmd.get("id"), "result": {"rx": 0, "sha": "", "end": "agent-error:" + repr(e)}})


def main():
    threading.stack_size(256 * 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    say({"ready": "agent"})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        fn = do_listen if cmd["op"] == "listen" else do_connect
        threading.Thread(target=guarded, args=(fn, cmd), daemon=True).start()


if __name__ == "__main__":
    main()
