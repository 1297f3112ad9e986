#!/usr/bin/env python3
"""limit_origin.py - an HTTP/1.1 origin that enforces a request limit and
states it in the response header fields of one API dialect, for sluice's
quota tests and bench/limits.sh (standard library only).

    limit_origin.py --port-file F --log F [--pid-file F] [--bind ADDR]
                    --dialect xratelimit|ietf|openai|anthropic|bare|
                              ezthrottle
                    --limit L --window W [--burst B] [--coarse] [--epoch]
                    [--retry-after]

Like origin.py it binds ADDR (default 127.0.0.1) on an ephemeral port,
writes the port (and its PID) to the files given, each written whole and
renamed, and serves until killed: a ThreadingHTTPServer, HTTP/1.1 with
keep-alive, every answer with a Content-Length.  Any method and any path
but /count is a call to the limited API: its request body (Content-Length
or chunked) is read, then it is answered 200 with a small JSON body
{"ok": true, "remaining": R} within the limit, 429 with
{"error": "rate_limited"} beyond it (nothing is consumed by a 429), both
with the dialect's fields.  Each call is appended to --log as one JSON
line:

    {"time": 1700000000.123, "method": "GET", "target": "/v1/a/1",
     "status": 200, "remaining": 7, "window": 3, "peer_port": 41234}

"window" is the number of the enforcement period the call fell in,
counted from the server's start (below).  /count is not logged and not
limited; read it directly, not through the proxy:

    {"ok": n200, "limited": n429, "first": t, "last": t (the first and
     last call's time, null before any), "start": t (the server's),
     "window_s": seconds of one enforcement period, "dialect", "limit",
     "window", "burst", "per_second": L / W}

Enforcement:

  xratelimit, ietf, bare: fixed windows of W seconds aligned to the
    server's start (window k is [start + kW, start + (k+1)W)): at most L
    calls answered 200 in each, whatever their phase.  A fixed window, not
    a sliding log, is what most APIs that state X-RateLimit-* or an IETF
    policy run; a client that follows what the fields say never meets
    the case where the two differ (2L in W around a boundary).  window_s
    is W.
  openai, anthropic: a token bucket refilled continuously at L/W calls a
    second, holding at most B (--burst, default L), one token a call: the
    documented behaviour of both APIs ("continuously replenished", and a
    per-minute limit "may be enforced over shorter periods", as 60 RPM
    may be enforced as 1 request per second).  It starts full.  The
    fields state the limit per minute, L * 60 / W, as these APIs do: with
    --limit 600 --window 60 it is 600 a minute; --burst 10 then enforces
    it as 10 a second, so a test sees the bucket run dry in seconds
    rather than after a minute's 600.  window_s is the time the bucket
    takes to fill from empty, B * W / L.

Dialects (R: calls left, after this one; T: seconds until the reset, by
default rounded up to the millisecond):

  xratelimit   X-RateLimit-Limit: L, X-RateLimit-Remaining: R,
               X-RateLimit-Reset: T as seconds with three decimals, the
               time until the window ends ("0.250"; --coarse: whole
               seconds rounded up; --epoch: the Unix time in seconds,
               rounded up, as GitHub sends).
  ietf         RateLimit-Policy: "default";q=L;w=W and
               RateLimit: "default";r=R;t=T, T in whole seconds rounded
               up (the draft's t is an integer).  W must be whole.
  openai       x-ratelimit-limit-requests: L per minute,
               x-ratelimit-remaining-requests: what the bucket holds
               (rounded down), x-ratelimit-reset-requests: the time until
               the bucket is full again as a Go duration ("1s", "6m0s",
               "20ms", "1.5s"; --coarse: whole seconds rounded up); and
               the -tokens fields of a token bucket (below).
  anthropic    anthropic-ratelimit-requests-limit (per minute), -remaining
               (the bucket), -reset (the RFC 3339 UTC time the bucket is
               full again, "2026-12-06T12:00:00.250Z"; --coarse: whole
               seconds rounded up, as the API shows them); the -tokens-,
               -input-tokens- and -output-tokens- fields (below); and on
               a 429 retry-after: seconds until one call is allowed,
               rounded up, as the API sends.
  bare         no field on a 200; a 429 has Retry-After: seconds until the
               window ends, rounded up.
  ezthrottle   X-EZTHROTTLE-RPS: limit / window on every answer (fixed
               windows, as bare; a 429 has Retry-After).

On a 429 every dialect but bare shows remaining 0 with its reset; with
--retry-after every dialect adds Retry-After (seconds until a call is
allowed, rounded up) to a 429.

Token quotas (openai, anthropic) are shown, never enforced: each call
costs a fixed number of tokens from buckets sized like the request bucket
(capacity its per-minute limit times B / L), so they stay far from empty
and never bind: openai a 1000 x L a minute token limit, 200 tokens a
call; anthropic input tokens 400 x L (150 a call), output tokens 80 x L
(30 a call), and tokens-* the one of the two with the least left in
proportion, as Anthropic shows its tightest token limit.

A malformed request gets the standard library's 400 and the connection
closed; an exception in a handler is answered 500 and logged on stderr;
neither stops the server.
"""

import argparse
import datetime
import json
import math
import os
import sys
import threading
import time
import http.server

from origin import write_atomic   # beside this file

LOCK = threading.Lock()
LOG_FILE = None
CFG = None          # argparse namespace
LIMITER = None      # FixedWindow or Bucket
TOKENS = []         # [(name, Bucket, cost)], openai and anthropic
COUNTS = {"ok": 0, "limited": 0, "first": None, "last": None}
START_WALL = 0.0
START_MONO = 0.0


def ceil_ms(secs):
    """secs rounded up to the millisecond, as a float."""
    return math.ceil(max(secs, 0.0) * 1000 - 1e-6) / 1000.0


class FixedWindow:
    """At most limit calls in each window of w seconds from start."""

    def __init__(self, limit, w, start):
        self.limit, self.w, self.start = limit, w, start
        self.k, self.used = 0, 0

    def window_s(self):
        return self.w

    def _roll(self, now):
        k = int((now - self.start) // self.w)
        if k != self.k:
            self.k, self.used = k, 0
        return k

    def take(self, now):
        """(allowed, remaining after, reset secs, secs until one more)."""
        k = self._roll(now)
        reset = self.start + (k + 1) * self.w - now
        if self.used >= self.limit:
            return False, 0, reset, reset
        self.used += 1
        left = self.limit - self.used
        return True, left, reset, (0.0 if left > 0 else reset)

    def number(self, now):
        return int((now - self.start) // self.w)


class Bucket:
    """A token bucket: capacity tokens, refilled at rate a second."""

    def __init__(self, capacity, rate, now):
        self.capacity, self.rate = float(capacity), float(rate)
        self.tokens, self.at = float(capacity), now

    def window_s(self):
        return self.capacity / self.rate

    def _fill(self, now):
        if now > self.at:
            self.tokens = min(self.capacity,
                              self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, now, cost=1.0, enforce=True):
        """(allowed, remaining after, secs until full, secs until cost)."""
        self._fill(now)
        ok = self.tokens >= cost or not enforce
        if ok:
            self.tokens = max(0.0, self.tokens - cost)
        full = (self.capacity - self.tokens) / self.rate
        more = max(0.0, (cost - self.tokens) / self.rate)
        return ok, int(math.floor(self.tokens + 1e-9)), full, more

    def number(self, now):
        return int((now - START_MONO) // self.window_s())


def go_duration(secs, coarse):
    """secs as Go's time.Duration prints it, at millisecond precision."""
    if coarse:
        secs = math.ceil(secs - 1e-9)
    ms = int(round(ceil_ms(secs) * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return "%dms" % ms
    h, rest = divmod(ms, 3600000)
    m, rest = divmod(rest, 60000)
    s = ("%d.%03d" % divmod(rest, 1000)).rstrip("0").rstrip(".")
    if h:
        return "%dh%dm%ss" % (h, m, s)
    if m:
        return "%dm%ss" % (m, s)
    return "%ss" % s


def rfc3339(wall, coarse):
    """The UTC time wall (Unix seconds) in RFC 3339, rounded up."""
    if coarse:
        t = datetime.datetime.fromtimestamp(math.ceil(wall - 1e-9),
                                            datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    ms = math.ceil(wall * 1000 - 1e-6)
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def per_minute(n):
    """A count per window of CFG.window as a count per minute."""
    return int(round(n * 60.0 / CFG.window))


def dialect_fields(ok, remaining, reset, more, now_wall, token_state):
    """The dialect's response fields, as [(name, value)]."""
    d, L, c = CFG.dialect, CFG.limit, CFG.coarse
    f = []
    if d == "xratelimit":
        if CFG.epoch:
            r = "%d" % math.ceil(now_wall + reset - 1e-9)
        elif c:
            r = "%d" % math.ceil(reset - 1e-9)
        else:
            r = "%.3f" % ceil_ms(reset)
        f += [("X-RateLimit-Limit", str(L)),
              ("X-RateLimit-Remaining", str(remaining)),
              ("X-RateLimit-Reset", r)]
    elif d == "ietf":
        f += [("RateLimit-Policy", '"default";q=%d;w=%d' % (L, CFG.window)),
              ("RateLimit", '"default";r=%d;t=%d'
               % (remaining, math.ceil(reset - 1e-9)))]
    elif d == "openai":
        f += [("x-ratelimit-limit-requests", str(per_minute(L))),
              ("x-ratelimit-remaining-requests", str(remaining)),
              ("x-ratelimit-reset-requests", go_duration(reset, c))]
        for name, limit, left, full in token_state:
            f += [("x-ratelimit-limit-tokens", str(limit)),
                  ("x-ratelimit-remaining-tokens", str(left)),
                  ("x-ratelimit-reset-tokens", go_duration(full, c))]
    elif d == "anthropic":
        p = "anthropic-ratelimit-"
        f += [(p + "requests-limit", str(per_minute(L))),
              (p + "requests-remaining", str(remaining)),
              (p + "requests-reset", rfc3339(now_wall + reset, c))]
        tight = None
        for name, limit, left, full in token_state:
            f += [(p + name + "-limit", str(limit)),
                  (p + name + "-remaining", str(left)),
                  (p + name + "-reset", rfc3339(now_wall + full, c))]
            if tight is None or left / limit < tight[2] / tight[1]:
                tight = (name, limit, left, full)
        if tight:
            f += [(p + "tokens-limit", str(tight[1])),
                  (p + "tokens-remaining", str(tight[2])),
                  (p + "tokens-reset", rfc3339(now_wall + tight[3], c))]
        if not ok:
            f.append(("retry-after", "%d" % max(1, math.ceil(more - 1e-9))))
    elif d == "ezthrottle":
        f.append(("X-EZTHROTTLE-RPS", "%g" % (L / CFG.window)))
    if not ok and (d in ("bare", "ezthrottle") or
                   (CFG.retry_after and d != "anthropic")):
        f.append(("Retry-After", "%d" % max(1, math.ceil(more - 1e-9))))
    return f


def call(now, now_wall):
    """One call to the limited API: (status, fields, log record)."""
    with LOCK:
        ok, remaining, reset, more = LIMITER.take(now)
        token_state = []
        for name, bucket, cost, limit in TOKENS:
            _, left, full, _ = bucket.take(now, cost if ok else 0, False)
            token_state.append((name, limit, left, full))
        COUNTS["ok" if ok else "limited"] += 1
        if COUNTS["first"] is None:
            COUNTS["first"] = now_wall
        COUNTS["last"] = now_wall
        window = LIMITER.number(now)
    fields = dialect_fields(ok, remaining, reset, more, now_wall,
                            token_state)
    return (200 if ok else 429), fields, remaining, window


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sluice-limit-origin/1"
    timeout = 120          # seconds an idle keep-alive connection is kept

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def log_message(self, fmt, *args):
        if CFG.verbose:
            sys.stderr.write("limit-origin: %s %s\n"
                             % (self.address_string(), fmt % args))

    def log_error(self, fmt, *args):
        sys.stderr.write("limit-origin: %s %s\n"
                         % (self.address_string(), (fmt % args)[:300]))

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    break
                self.rfile.read(size)
                self.rfile.readline(65537)
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0:
            raise ValueError("negative Content-Length")
        while n > 0:
            got = self.rfile.read(min(n, 65536))
            if not got:
                raise ConnectionError("eof in body")
            n -= len(got)

    def answer_json(self, status, obj, fields=()):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in fields:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self):
        try:
            self.read_body()
        except (ValueError, ConnectionError) as e:
            self.log_error("bad request body: %s", e)
            self.close_connection = True
            return
        try:
            if self.path.split("?", 1)[0] == "/count":
                with LOCK:
                    c = dict(COUNTS)
                c.update(start=START_WALL, window_s=LIMITER.window_s(),
                         dialect=CFG.dialect, limit=CFG.limit,
                         window=CFG.window, burst=CFG.burst,
                         per_second=CFG.limit / CFG.window)
                self.answer_json(200, c)
                return
            now, now_wall = time.monotonic(), time.time()
            status, fields, remaining, window = call(now, now_wall)
            self.log_call(now_wall, status, remaining, window)
            if status == 200:
                self.answer_json(200, {"ok": True, "remaining": remaining},
                                 fields)
            else:
                self.answer_json(429, {"error": "rate_limited"}, fields)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:     # never let one request stop the server
            self.log_error("internal error: %r", e)
            self.close_connection = True
            try:
                self.answer_json(500, {"error": "internal"})
            except OSError:
                pass

    def log_call(self, wall, status, remaining, window):
        line = json.dumps({
            "time": wall, "method": self.command, "target": self.path,
            "status": status, "remaining": remaining, "window": window,
            "peer_port": self.client_address[1]}) + "\n"
        with LOCK:
            LOG_FILE.write(line)
            LOG_FILE.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def handle_error(self, request, client_address):
        sys.stderr.write("limit-origin: %s:%d: %r\n"
                         % (client_address[0], client_address[1],
                            sys.exc_info()[1]))


def main():
    global LOG_FILE, CFG, LIMITER, START_WALL, START_MONO
    ap = argparse.ArgumentParser(
        description="sluice test origin enforcing a stated limit")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--pid-file")
    ap.add_argument("--log", required=True)
    ap.add_argument("--dialect", required=True, choices=[
        "xratelimit", "ietf", "openai", "anthropic", "bare",
        "ezthrottle"])
    ap.add_argument("--limit", type=int, required=True,
                    help="calls allowed per window")
    ap.add_argument("--window", type=float, required=True,
                    help="seconds (openai, anthropic: the refill period)")
    ap.add_argument("--burst", type=int,
                    help="bucket capacity (openai, anthropic; default L)")
    ap.add_argument("--coarse", action="store_true",
                    help="resets in whole seconds")
    ap.add_argument("--epoch", action="store_true",
                    help="xratelimit: the reset as a Unix time")
    ap.add_argument("--retry-after", action="store_true",
                    help="Retry-After on every 429")
    ap.add_argument("--verbose", action="store_true",
                    help="log every request on stderr")
    args = ap.parse_args()
    if args.limit < 1 or not args.window > 0:
        ap.error("--limit must be >= 1 and --window > 0")
    if args.dialect == "ietf" and args.window != int(args.window):
        ap.error("ietf: --window must be whole seconds")
    if args.burst is None:
        args.burst = args.limit
    if args.burst < 1:
        ap.error("--burst must be >= 1")
    if args.window == int(args.window):
        args.window = int(args.window)
    CFG = args

    LOG_FILE = open(args.log, "a")
    START_WALL, START_MONO = time.time(), time.monotonic()
    rate = args.limit / args.window
    if args.dialect in ("openai", "anthropic"):
        LIMITER = Bucket(args.burst, rate, START_MONO)
        scale = args.burst / args.limit
        if args.dialect == "openai":
            kinds = [("tokens", 1000, 200)]
        else:
            kinds = [("input-tokens", 400, 150), ("output-tokens", 80, 30)]
        for name, per_call, cost in kinds:
            limit = per_minute(args.limit) * per_call
            TOKENS.append((name, Bucket(limit * scale, limit / 60.0,
                                        START_MONO), cost, limit))
    else:
        LIMITER = FixedWindow(args.limit, args.window, START_MONO)

    srv = Server((args.bind, 0), Handler)
    if args.pid_file:
        write_atomic(args.pid_file, "%d\n" % os.getpid())
    write_atomic(args.port_file, "%d\n" % srv.server_address[1])
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
