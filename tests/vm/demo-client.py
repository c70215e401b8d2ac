#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The clients of the lab's demo (tests/vm/t-demo.sh), run outside the guest.

Each keeps one connection and measures the service's outage as a client
sees it: the longest time between two answers.

  demo-client.py echo HOST PORT    one TCP connection; every 20 ms the next
                                   8-byte counter is sent and read back
  demo-client.py redis HOST PORT   one connection to redis: INCR of a key
                                   every 20 ms, each answer one more
  demo-client.py lines [--seq]     copies stdin (ping's or ssh's output);
                                   each line is an answer; --seq: the first
                                   number of each line counts up by one
  demo-client.py redis-keys HOST PORT N set|check
                                   SET (pipelined) or check keys 0..N-1 and
                                   print "KEYS <n right>"

Output, flushed line by line:
  "N <value>"            every 50 answers (lines: every line)
  "GAP <ms> <epoch>"     an answer came <ms> after the previous one
                         (over 300 ms), at <epoch> (seconds)
  "ERROR <text>"         a reset, an end of file or a wrong answer; the
                         client then exits 1
"""
import re
import socket
import struct
import sys
import time

GAP_MS = 300
PERIOD = 0.02


def out(*a):
    print(*a, flush=True)


class Gaps:
    def __init__(self):
        self.last = None

    def answer(self):
        now = time.time()
        if self.last is not None and (now - self.last) * 1000 > GAP_MS:
            out("GAP %d %.3f" % ((now - self.last) * 1000, now))
        self.last = now


def fail(text):
    out("ERROR " + text)
    sys.exit(1)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        try:
            c = s.recv(n - len(b))
        except OSError as e:
            fail("recv: %s" % e)
        if not c:
            fail("end of file from the server")
        b += c
    return b


def connect(host, port):
    try:
        s = socket.create_connection((host, int(port)), timeout=30)
    except OSError as e:
        fail("connect %s:%s: %s" % (host, port, e))
    s.settimeout(None)  # TCP's own retransmissions decide, as for any client
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out("CONNECTED %s:%s" % (host, port))
    return s


def echo(host, port):
    s, g, v = connect(host, port), Gaps(), 0
    while True:
        try:
            s.sendall(struct.pack("<Q", v))
        except OSError as e:
            fail("send: %s" % e)
        got = struct.unpack("<Q", recv_exact(s, 8))[0]
        if got != v:
            fail("echo %d, sent %d" % (got, v))
        g.answer()
        if v % 50 == 0:
            out("N %d" % v)
        v += 1
        time.sleep(PERIOD)


def redis(host, port):
    s, g, n, prev = connect(host, port), Gaps(), 0, None
    f = s.makefile("rb")
    cmd = b"*2\r\n$4\r\nINCR\r\n$12\r\nkup-demo-cnt\r\n"
    while True:
        try:
            s.sendall(cmd)
            line = f.readline()
        except OSError as e:
            fail("redis: %s" % e)
        if not line:
            fail("end of file from redis")
        if not line.startswith(b":"):
            fail("redis answered %r" % line)
        val = int(line[1:])
        if prev is not None and val != prev + 1:
            fail("INCR gave %d after %d" % (val, prev))
        prev = val
        g.answer()
        if n % 50 == 0:
            out("N %d" % val)
        n += 1
        time.sleep(PERIOD)


def redis_keys(host, port, n, op):
    s = connect(host, port)
    f = s.makefile("rb")

    def val(i):
        return b"value-%d-" % i + b"x" * (i % 100)

    def cmd(*a):
        return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)

    good = 0
    for lo in range(0, n, 1000):
        hi = min(n, lo + 1000)
        if op == "set":
            s.sendall(b"".join(cmd(b"SET", b"key:%d" % i, val(i)) for i in range(lo, hi)))
            for i in range(lo, hi):
                good += f.readline() == b"+OK\r\n"
        else:
            s.sendall(b"".join(cmd(b"GET", b"key:%d" % i) for i in range(lo, hi)))
            for i in range(lo, hi):
                h = f.readline()
                if h.startswith(b"$") and int(h[1:]) >= 0:
                    good += f.readline()[:-2] == val(i)
    out("KEYS %d" % good)


def lines(seq):
    g, prev = Gaps(), None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            break
        line = line.decode(errors="replace").rstrip("\r\n")
        if seq:
            m = re.search(r"\d+", line)
            if not m:
                continue
            v = int(m.group())
            if prev is not None and v != prev + 1:
                fail("%d after %d" % (v, prev))
            prev = v
        g.answer()
        out("N %s" % line)
    fail("end of input (the program exited)")


def main(argv):
    if len(argv) >= 4 and argv[1] == "echo":
        echo(argv[2], argv[3])
    elif len(argv) >= 4 and argv[1] == "redis":
        redis(argv[2], argv[3])
    elif len(argv) >= 6 and argv[1] == "redis-keys":
        redis_keys(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) >= 2 and argv[1] == "lines":
        lines("--seq" in argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
