#!/usr/bin/env python3
"""receiver.py - a webhook receiver for sluice's integration tests (Python 3
standard library only).

    receiver.py --port-file F --pid-file F --log F [--bind 127.0.0.1]
                [--port P] [--secret-file F]...

Binds an ephemeral port (or --port) on loopback, writes the port to --port-file and its
PID to --pid-file (written to a temporary file, then renamed) and serves
until killed.  Every POST is appended to --log as one JSON line:

    {"time": 1700000000.123, "path": "/hook", "n": 1,
     "headers": {"content-type": "application/json", ...},
     "body": "<raw body, UTF-8>", "json": {...} or null,
     "signature": "t=...,v1=..." or null,
     "sig_ok": true | false | null (no --secret-file),
     "answer": 200}

The signature is checked the way the hosted service's SDK verifiers do it,
computed here independently: X-EZThrottle-Signature "t=<unix>,v1=<hex>",
HMAC-SHA-256(secret, "<t>.<raw body>"), |now - t| <= 300 s.  With several
--secret-file options (rotation), any one of them verifies.

Answers, chosen by the path ("n" counts the arrivals for that exact path):

  /fail-K...       500 for the first K arrivals, then 200
  /always-500...   always 500
  /slow-MS...      waits MS milliseconds, then 200
  anything else    200
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time

LOCK = threading.Lock()
COUNT = {}
SECRETS = []
LOG = None


def verify(sig, body):
    if not SECRETS:
        return None
    if not sig:
        return False
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - t) > 300:
        return False
    for s in SECRETS:
        mac = hmac.new(s, str(t).encode() + b"." + body,
                       hashlib.sha256).hexdigest()
        if hmac.compare_digest(mac, parts.get("v1", "")):
            return True
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        path = self.path
        with LOCK:
            COUNT[path] = COUNT.get(path, 0) + 1
            k = COUNT[path]
        answer = 200
        m = re.match(r"^/fail-(\d+)", path)
        if m and k <= int(m.group(1)):
            answer = 500
        if path.startswith("/always-500"):
            answer = 500
        m = re.match(r"^/slow-(\d+)", path)
        if m:
            time.sleep(int(m.group(1)) / 1000.0)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        sig = self.headers.get("X-EZThrottle-Signature")
        rec = {
            "time": time.time(), "path": path, "n": k,
            "headers": {k2.lower(): v for k2, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"), "json": doc,
            "signature": sig, "sig_ok": verify(sig, body),
            "answer": answer,
        }
        with LOCK:
            LOG.write(json.dumps(rec) + "\n")
            LOG.flush()
        out = b'{"ok": true}' if answer == 200 else b'{"ok": false}'
        self.send_response(answer)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret-file", action="append", default=[])
    a = ap.parse_args()
    for p in a.secret_file:
        with open(p, "rb") as f:
            SECRETS.append(f.read().rstrip(b"\r\n"))
    LOG = open(a.log, "a")
    srv = http.server.ThreadingHTTPServer((a.bind, a.port), Handler)
    srv.daemon_threads = True
    write_atomic(a.pid_file, "%d\n" % os.getpid())
    write_atomic(a.port_file, "%d\n" % srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
