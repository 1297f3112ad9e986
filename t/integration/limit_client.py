#!/usr/bin/env python3
"""limit_client.py - N polite clients calling one API for S seconds, for
sluice's quota tests and bench/limits.sh (standard library only).

    limit_client.py --url URL [--proxy HOST:PORT] [--clients N]
                    [--seconds S] [--header 'Name: value']... [--out FILE]

Each client has its own keep-alive connection (to the proxy with --proxy,
sending the absolute URL as a forward proxy expects; else straight to
URL's host) and calls GET URL/<client>/<n> in a loop, one call at a time:
after a 2xx (or any answer but 429 and 503) the next call goes at once;
after a 429 or 503 the client waits the answer's Retry-After (delta
seconds) or else 1 s, and sends the same call again. The clients connect
first, then start together; no call starts after S seconds (default 10),
and the calls in flight then are waited for. The headers given go on every
call (one Authorization for all makes them share one queue in sluice).

Prints (or writes to FILE) one JSON object:

    {"clients": N, "seconds": S, "t0": start (Unix s), "t1": last answer,
     "calls": calls answered 2xx, "attempts": answers of any status,
     "status": {"200": n, "429": n, ...}, "errors": failed connections,
     "latency_p50": s, "latency_p99": s, "latency_max": s}

Latency is one call's, from its first send to its 2xx, waits included.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def retry_after(resp):
    v = resp.getheader("Retry-After")
    try:
        return max(0.0, float(v))
    except (TypeError, ValueError):
        return 1.0


def main():
    ap = argparse.ArgumentParser(description="polite clients of one API")
    ap.add_argument("--url", required=True)
    ap.add_argument("--proxy", help="HOST:PORT of a forward proxy")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=120,
                    help="seconds to wait for one answer")
    ap.add_argument("--out")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.url)
    if args.proxy:
        host, _, port = args.proxy.rpartition(":")
    else:
        host, port = url.hostname, url.port or 80
    fields = dict(h.split(": ", 1) for h in args.header)
    base = args.url.rstrip("/")

    lock = threading.Lock()
    status, lat = {}, []
    errors = [0]
    last = [0.0]
    conns = []
    for _ in range(args.clients):
        c = http.client.HTTPConnection(host, int(port), timeout=args.timeout)
        c.connect()
        conns.append(c)
    gate = threading.Barrier(args.clients + 1)
    stop = [0.0]

    def run(i):
        conn = conns[i]
        n = 0
        gate.wait()
        while time.monotonic() < stop[0]:
            n += 1
            path = "%s/%d/%d" % (base, i + 1, n)
            target = path if args.proxy else \
                urllib.parse.urlsplit(path)._replace(
                    scheme="", netloc="").geturl()
            t = time.monotonic()
            while True:
                try:
                    conn.request("GET", target, headers=fields)
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException):
                    with lock:
                        errors[0] += 1
                    conn.close()
                    time.sleep(0.1)
                    if time.monotonic() >= stop[0]:
                        return
                    continue
                now = time.monotonic()
                with lock:
                    k = str(resp.status)
                    status[k] = status.get(k, 0) + 1
                    last[0] = time.time()
                if resp.status not in (429, 503):
                    if 200 <= resp.status < 300:
                        with lock:
                            lat.append(now - t)
                    break
                wait = retry_after(resp)
                if now + wait >= stop[0]:
                    return
                time.sleep(wait)

    threads = [threading.Thread(target=run, args=(i,), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    t0 = time.time()
    stop[0] = time.monotonic() + args.seconds
    gate.wait()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 4) \
            if lat else None

    res = {
        "clients": args.clients, "seconds": args.seconds,
        "t0": t0, "t1": last[0], "calls": len(lat),
        "attempts": sum(status.values()), "status": status,
        "errors": errors[0], "latency_p50": pct(0.5),
        "latency_p99": pct(0.99), "latency_max": pct(1.0),
    }
    out = open(args.out, "w") if args.out else sys.stdout
    out.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
