#!/usr/bin/env python3
"""origin.py - a scripted local HTTP/1.1 origin server for sluice's
integration tests (Python 3 standard library only).

    origin.py --port-file F --pid-file F --log F [--bind 127.0.0.1]
              [--cert FILE --key FILE]

Binds an ephemeral port on loopback, writes the port to --port-file and
its PID to --pid-file (each written to a temporary file, then renamed, so
a reader never sees a partial file) and serves until killed.  Every request
that arrives is appended to --log as one JSON line:

    {"time": 1700000000.123, "method": "GET", "target": "/echo?a=1",
     "version": "HTTP/1.1", "headers": [["Host", "..."], ...],
     "body_length": 0, "body_sha256": "e3b0...", "peer_port": 41234}

"target" is the request target exactly as it was on the request line.

Scripts, chosen by the path (every one also answers HEAD: same status and
headers, Content-Length included, no body):

  /echo...            200, JSON: method, target, version, headers,
                      body_length, body_sha256 and, for small bodies, body
  /upload             200, JSON: body_length, body_sha256
  /status/NNN         status NNN with a small text body (none for 1xx,
                      204, 304)
  /headers?n=v&n=v    200; each query pair becomes a response header, in
                      order (repeat a name to repeat the field)
  /bytes/N?seed=S     N pseudo-random bytes, deterministic from S (default
                      0), with Content-Length
  /chunked/N?seed=S   the same N bytes as /bytes/N?seed=S, sent with
                      Transfer-Encoding: chunked in several chunks
  /slow/MS            waits MS milliseconds, then answers like /echo
  /drip/N?interval=MS N chunks "data: i\\n\\n" (chunked, text/event-stream),
                      one every MS milliseconds (default 100)
  /close              closes the connection without answering
  /bigheader/N?count=C
                      200 with C (default 1) response header fields
                      X-Big-i of N bytes each
  /reply/NNN?n=v&n=v  status NNN, each query pair a response header (like
                      /headers) except _ms=MS (wait MS milliseconds first)
                      and _group=G (count the request in group G, below);
                      JSON body {"status": NNN}
  /seq/NAME?codes=C1,C2,...&retry_after=S
                      the i-th arrival for NAME gets status Ci (the last
                      code repeats); with retry_after, every answer that
                      is not 2xx carries "Retry-After: S"; JSON body
                      {"name", "n" (1-based arrival number), "status"}
  /groups/G           200, JSON {"now", "max", "count"}: requests of
                      group G in progress now, the most ever in progress
                      at once, how many there were (read it directly, not
                      through the proxy).  A request leaves its group
                      before its answer is written, so an answer the proxy
                      has read is never counted as in progress.
  anything else       404, JSON

Request bodies are read whatever the path (Content-Length or chunked), so
keep-alive connections stay in step.

With --cert and --key (PEM files), the origin speaks HTTPS: every
connection is TLS (HTTP/1.1 only, ALPN "http/1.1"), with the same scripts,
keep-alive and log.  The handshake runs in the connection's own thread, so
a client that fails it (an untrusted certificate, garbage, silence: 10 s)
costs that connection only; it is logged on stderr as "origin: tls: ...".
"""

import argparse
import hashlib
import http.client
import http.server
import json
import os
import random
import ssl
import sys
import threading
import time
import urllib.parse

# The proxy, not the origin, is what the tests check for header limits.
http.client._MAXLINE = 1 << 20
http.client._MAXHEADERS = 1000

LOG_LOCK = threading.Lock()
LOG_FILE = None
ECHO_BODY_MAX = 65536
SEQ_LOCK = threading.Lock()
SEQ_COUNT = {}          # /seq/NAME: arrivals so far, by NAME
GROUPS = {}             # /reply/...?_group=G: {"now", "max", "count"}
CHUNK = 65536


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def prng_bytes(n, seed):
    return random.Random("sluice-origin-%s" % seed).randbytes(n)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sluice-test-origin/1"
    timeout = 120          # seconds an idle keep-alive connection is kept

    # Any method at all is served by dispatch().
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def log_message(self, fmt, *args):
        sys.stderr.write("origin: %s %s\n" % (self.address_string(),
                                              fmt % args))

    # --- request body ---------------------------------------------------

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)      # CRLF after the data
            while True:                          # trailer fields
                line = self.rfile.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
            return b"".join(parts)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # --- answering ------------------------------------------------------

    def answer(self, status, body=b"", headers=(), ctype="text/plain",
               length=True):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        no_body = status < 200 or status in (204, 304)
        if length and not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(body)

    def answer_json(self, status, obj, headers=()):
        body = (json.dumps(obj) + "\n").encode()
        self.answer(status, body, headers, "application/json")

    def answer_chunked(self, pieces, ctype="application/octet-stream",
                       interval=0.0):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        for piece in pieces:
            if interval:
                time.sleep(interval)
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    # --- scripts --------------------------------------------------------

    def describe(self, body):
        d = {
            "method": self.command,
            "target": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        if len(body) <= ECHO_BODY_MAX:
            d["body"] = body.decode("utf-8", "replace")
        return d

    def dispatch(self):
        try:
            body = self.read_body()
        except (ValueError, ConnectionError) as e:
            self.log_message("bad request body: %s", e)
            self.close_connection = True
            return
        self.log_arrival(body)

        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        q = dict(query)
        parts = path.split("/")
        arg = parts[2] if len(parts) > 2 else ""

        try:
            if path.startswith("/echo") or path == "/":
                self.answer_json(200, self.describe(body))
            elif path == "/upload":
                self.answer_json(200, {
                    "body_length": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest()})
            elif path.startswith("/status/"):
                status = int(arg)
                self.answer(status, b"status %d\n" % status)
            elif path == "/headers":
                # Percent-escapes are the field's octets, sent as they are
                # (latin-1 maps each to itself), UTF-8 or not.
                self.answer(200, b"headers\n", urllib.parse.parse_qsl(
                    url.query, keep_blank_values=True, encoding="latin-1"))
            elif path.startswith("/bytes/"):
                self.send_bytes(int(arg), q.get("seed", "0"))
            elif path.startswith("/chunked/"):
                data = prng_bytes(int(arg), q.get("seed", "0"))
                # Uneven chunks: 1 byte, 10, 1000, then 64 KiB ones.
                pieces, off = [], 0
                for size in [1, 10, 1000] + [CHUNK] * (len(data) // CHUNK + 1):
                    pieces.append(data[off:off + size])
                    off += size
                self.answer_chunked(pieces)
            elif path.startswith("/slow/"):
                time.sleep(int(arg) / 1000.0)
                self.answer_json(200, self.describe(body))
            elif path.startswith("/drip/"):
                interval = int(q.get("interval", "100")) / 1000.0
                pieces = [b"data: %d\n\n" % i for i in range(int(arg))]
                self.answer_chunked(pieces, "text/event-stream", interval)
            elif path.startswith("/bigheader/"):
                n, c = int(arg), int(q.get("count", "1"))
                self.answer(200, b"ok\n",
                            [("X-Big-%d" % i, "b" * n) for i in range(c)])
            elif path == "/close":
                self.close_connection = True
            elif path.startswith("/reply/"):
                self.reply(int(arg), query)
            elif path.startswith("/seq/"):
                self.seq(arg, q)
            elif path.startswith("/groups/"):
                with SEQ_LOCK:
                    g = dict(GROUPS.get(arg, {"now": 0, "max": 0,
                                              "count": 0}))
                self.answer_json(200, g)
            else:
                self.answer_json(404, {"error": "no_such_script",
                                       "path": path})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def reply(self, status, query):
        ms, group, headers = 0, None, []
        for name, value in query:
            if name == "_ms":
                ms = int(value)
            elif name == "_group":
                group = value
            else:
                headers.append((name, value))
        if group is not None:
            with SEQ_LOCK:
                g = GROUPS.setdefault(group, {"now": 0, "max": 0,
                                              "count": 0})
                g["now"] += 1
                g["count"] += 1
                g["max"] = max(g["max"], g["now"])
        try:
            if ms:
                time.sleep(ms / 1000.0)
        finally:
            if group is not None:
                with SEQ_LOCK:
                    GROUPS[group]["now"] -= 1
        self.answer_json(status, {"status": status}, headers)

    def seq(self, name, q):
        codes = [int(c) for c in q.get("codes", "200").split(",")]
        with SEQ_LOCK:
            n = SEQ_COUNT.get(name, 0) + 1
            SEQ_COUNT[name] = n
        status = codes[min(n, len(codes)) - 1]
        headers = []
        if "retry_after" in q and not 200 <= status < 300:
            headers.append(("Retry-After", q["retry_after"]))
        self.answer_json(status, {"name": name, "n": n, "status": status},
                         headers)

    def send_bytes(self, n, seed):
        data = prng_bytes(n, seed)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command != "HEAD":
            for off in range(0, n, CHUNK):
                self.wfile.write(data[off:off + CHUNK])

    def log_arrival(self, body):
        rec = {
            "time": time.time(),
            "method": self.command,
            "target": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "peer_port": self.client_address[1],
        }
        line = json.dumps(rec) + "\n"
        with LOG_LOCK:
            LOG_FILE.write(line)
            LOG_FILE.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    tls = None             # an ssl.SSLContext with --cert/--key

    def finish_request(self, request, client_address):
        if self.tls is None:
            return super().finish_request(request, client_address)
        # In the connection's thread (not in accept): a failed or stalled
        # handshake holds up no one else.
        try:
            request.settimeout(10)
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("origin: tls: %s:%d: handshake: %s\n"
                             % (client_address[0], client_address[1], e))
            return
        try:
            super().finish_request(conn, client_address)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("origin: tls: %s:%d: %s\n"
                             % (client_address[0], client_address[1], e))
        finally:
            conn.close()


def main():
    global LOG_FILE
    ap = argparse.ArgumentParser(description="sluice test origin")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--pid-file")
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert", help="PEM certificate (chain): serve HTTPS")
    ap.add_argument("--key", help="PEM private key of --cert")
    args = ap.parse_args()
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")

    LOG_FILE = open(args.log, "a")
    srv = Server((args.bind, 0), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        srv.tls = ctx
    if args.pid_file:
        write_atomic(args.pid_file, "%d\n" % os.getpid())
    write_atomic(args.port_file, "%d\n" % srv.server_address[1])
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
