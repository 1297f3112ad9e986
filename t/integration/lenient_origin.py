#!/usr/bin/env python3
"""lenient_origin.py - an HTTP/1.1 origin that parses the way careless
servers do, for sluice's request smuggling tests (standard library only).

    lenient_origin.py --port-file F --pid-file F --log F [--bind 127.0.0.1]

It trims whitespace around field names ("Transfer-Encoding : chunked" is
Transfer-Encoding), lets Transfer-Encoding win over Content-Length, takes
a bare CR as a line end, and keeps connections alive. So a request that a
proxy frames one way and this origin another leaves bytes behind that
become the start of the next request on that connection, the way a
smuggling attack works against a real origin.

Every request is appended to --log as one JSON line:
    {"method", "target", "headers": [[name, value], ...], "body"}
and answered 200 with the JSON {"target", "authorization"}.
"""
import argparse
import json
import os
import re
import socket
import threading


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class Conn:
    def __init__(self, sock, log, lock):
        self.sock, self.log, self.lock = sock, log, lock
        self.buf = b""

    def fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def line(self):
        while True:
            m = re.search(b"\r\n|\n|\r", self.buf)
            if m:
                ln, self.buf = self.buf[:m.start()], self.buf[m.end():]
                return ln
            self.fill()

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        b, self.buf = self.buf[:n], self.buf[n:]
        return b

    def request(self):
        ln = self.line()
        while ln == b"":
            ln = self.line()
        parts = ln.split(b" ")
        method, target = parts[0], parts[1] if len(parts) > 1 else b"/"
        headers = []
        while True:
            ln = self.line()
            if ln == b"":
                break
            if ln[:1] in (b" ", b"\t") and headers:
                n, v = headers[-1]
                headers[-1] = (n, v + b" " + ln.strip())
                continue
            n, _, v = ln.partition(b":")
            headers.append((n.strip(), v.strip()))
        low = {n.lower(): v for n, v in headers}
        body = b""
        if low.get(b"transfer-encoding", b"").lower().endswith(b"chunked"):
            while True:
                size = int(self.line().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.line() != b"":
                        pass
                    break
                body += self.take(size)
                self.line()
        elif b"content-length" in low:
            body = self.take(int(low[b"content-length"]))
        return method, target, headers, body

    def serve(self):
        try:
            while True:
                method, target, headers, body = self.request()
                rec = {
                    "method": method.decode("latin-1"),
                    "target": target.decode("latin-1"),
                    "headers": [[n.decode("latin-1"), v.decode("latin-1")]
                                for n, v in headers],
                    "body": body.decode("latin-1"),
                }
                with self.lock:
                    with open(self.log, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                auth = ""
                for n, v in headers:
                    if n.lower() == b"authorization":
                        auth = v.decode("latin-1")
                out = json.dumps({"target": rec["target"],
                                  "authorization": auth}).encode()
                self.sock.sendall(b"HTTP/1.1 200 OK\r\n"
                                  b"Content-Type: application/json\r\n"
                                  b"Content-Length: %d\r\n\r\n" % len(out)
                                  + out)
        except (EOFError, OSError, ValueError, IndexError):
            pass
        finally:
            self.sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, 0))
    ls.listen(128)
    lock = threading.Lock()
    write_atomic(a.pid_file, "%d\n" % os.getpid())
    write_atomic(a.port_file, "%d\n" % ls.getsockname()[1])
    while True:
        s, _ = ls.accept()
        threading.Thread(target=Conn(s, a.log, lock).serve,
                         daemon=True).start()


if __name__ == "__main__":
    main()
