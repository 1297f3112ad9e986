#!/usr/bin/env python3
"""Memory a forward proxy holds per idle client connection.

    idle.py PROXY_PORT ORIGIN N PID [SETTLE_S]

Reads the resident memory (VmRSS, KiB) of process PID and all of its
descendants, opens N connections to 127.0.0.1:PROXY_PORT, sends on each one
keep-alive request through the proxy (GET http://ORIGIN/1k, Host: ORIGIN)
and reads the whole answer, leaves them all open and idle for SETTLE_S
seconds (default 1), reads the resident memory again, counts how many of the
N connections the proxy still holds open, closes them and prints one line:

    rss_before_kib rss_after_kib answered_ok still_open

Threads are counted once (VmRSS is per process). Pages shared between the
processes of the tree (nginx's master and worker) are counted in each, but
they do not change between the two readings, so the difference is sound.
Used by bench/peers/run.sh; exits 1 with a message on stderr if the proxy
cannot be reached.
"""
import os
import socket
import sys
import time


def tree(pid):
    """pid and its descendants, from /proc/*/stat."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces: the fields after its closing parenthesis
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def read_answer(s):
    """Reads one HTTP answer with a Content-Length; True on 200."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        body += chunk
    return lines[0].split()[1:2] == [b"200"]


def still_open(s):
    """False if the peer closed the connection (EOF or reset)."""
    s.settimeout(0)  # a timeout would make recv wait for data first
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__.split("\n\n")[1])
    port, origin, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4])
    settle = float(sys.argv[5]) if len(sys.argv) == 6 else 1.0
    req = (f"GET http://{origin}/1k HTTP/1.1\r\nHost: {origin}\r\n"
           "Accept: */*\r\n\r\n").encode()
    before = rss_kib(pid)
    socks, ok = [], 0
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            socks.append(s)
            s.sendall(req)
            if read_answer(s):
                ok += 1
    except OSError as e:
        print(f"idle.py: after {len(socks)} connections: {e}",
              file=sys.stderr)
        sys.exit(1)
    time.sleep(settle)
    after = rss_kib(pid)
    kept = sum(1 for s in socks if still_open(s))
    for s in socks:
        s.close()
    print(before, after, ok, kept)


if __name__ == "__main__":
    main()
