#!/usr/bin/env python3
"""https_client.py - an HTTPS client for sluice's integration tests: Python
requests (Debian: python3-requests) or, with --urllib, the standard
library only.

    https_client.py [OPTIONS] PROXY URL...

PROXY is the proxy's URL (http://127.0.0.1:PORT), for http:// and
https:// URLs alike; "env" takes the proxy from the environment
(https_proxy, http_proxy, no_proxy and the upper-case names); "-" means
no proxy.  Both clients open a CONNECT tunnel for https:// URLs and send
http:// ones to the proxy in absolute form.

requests: one Session for all the URLs, so the URLs of one origin share
one connection (one tunnel, one TLS session, keep-alive) unless an answer
closes it.  --urllib: urllib.request with a ProxyHandler and an
HTTPSHandler whose SSLContext loads the CA; urllib sends
"Connection: close", so every URL has its own connection (and tunnel).

Options:
  --urllib           urllib.request instead of requests
  -X METHOD          method (default GET, or POST with -d)
  -d DATA            request body; @FILE reads FILE
  -H 'Name: value'   a request header (repeatable; a repeated name is
                     sent once, the values joined with ", ")
  --requests JSON    a JSON array of {"url", "method", "headers" ({name:
                     value} or [[name, value], ...]), "body"} requests, in
                     place of the URLs (-X, -d, -H are defaults)
  --ca FILE          trust FILE (PEM) for the origins' TLS, and only it;
                     default $SLUICE_CA when set.  Without it: requests
                     trusts REQUESTS_CA_BUNDLE or its default bundle,
                     urllib the system store (SSL_CERT_FILE)
  --timeout MS       connect and read timeout (default 30000)

Output: one JSON line per response, in order:
  {"url", "status", "headers": {lower-cased name: value, repeats joined
   with ", "}, "body" (UTF-8, lossy for binary), "body_length",
   "body_sha256"}
An answer with an error status is a response like any other.  On the
first failure: a line {"url", "error", "code"} (code: the SSL reason, such
as CERTIFICATE_VERIFY_FAILED, or the innermost exception's class, such as
ProxyError, ConnectionRefusedError), the message on stderr, exit status
1.  Usage errors: exit status 2.
"""

import argparse
import hashlib
import json
import os
import ssl
import sys


def header_pairs(h):
    if isinstance(h, dict):
        return [(k, str(v)) for k, v in h.items()]
    return [(k, str(v)) for k, v in (h or [])]


def joined(pairs):
    """Pairs as a dict, lower-cased names; repeats joined with ", "."""
    out, names = {}, {}
    for k, v in pairs:
        low = k.lower()
        if low in out:
            out[low] += ", " + v
        else:
            out[low], names[low] = v, k
    return out, names


def record(url, status, pairs, body):
    headers, _ = joined(pairs)
    return {
        "url": url,
        "status": status,
        "headers": headers,
        "body": body.decode("utf-8", "replace"),
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


def innermost(e):
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        nxt = None
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            nxt = reason
        elif e.args and isinstance(e.args[0], BaseException):
            nxt = e.args[0]
        elif e.__cause__ is not None:
            nxt = e.__cause__
        elif e.__context__ is not None:
            nxt = e.__context__
        if nxt is None:
            break
        e = nxt
    return e


def error_code(e):
    d = innermost(e)
    if isinstance(d, ssl.SSLError) and d.reason:
        return d.reason, d
    return type(d).__name__, d


def run_requests(args, reqs):
    try:
        import requests
    except ImportError as e:
        sys.stderr.write("https_client.py: no requests (python3-requests): "
                         "%s\n" % e)
        sys.exit(2)
    s = requests.Session()
    if args.proxy == "-":
        s.trust_env = False     # no proxy from the environment either
        proxies = {}
    elif args.proxy == "env":
        proxies = None
    else:
        proxies = {"http": args.proxy, "https": args.proxy}
    verify = args.ca if args.ca else True
    if args.proxy == "-" and not args.ca and os.environ.get(
            "REQUESTS_CA_BUNDLE"):
        verify = os.environ["REQUESTS_CA_BUNDLE"]
    tmo = args.timeout / 1000.0
    for r in reqs:
        headers, names = joined(r["headers"])
        resp = s.request(r["method"], r["url"], data=r["body"],
                         headers={names[k]: v for k, v in headers.items()},
                         proxies=proxies, verify=verify, timeout=tmo,
                         allow_redirects=False)
        body = resp.content
        yield record(r["url"], resp.status_code,
                     list(resp.headers.items()), body)
    s.close()


def run_urllib(args, reqs):
    import urllib.error
    import urllib.request
    if args.ca:
        ctx = ssl.create_default_context(cafile=args.ca)
    else:
        ctx = ssl.create_default_context()
    if args.proxy == "-":
        ph = urllib.request.ProxyHandler({})
    elif args.proxy == "env":
        ph = urllib.request.ProxyHandler()
    else:
        ph = urllib.request.ProxyHandler({"http": args.proxy,
                                          "https": args.proxy})
    opener = urllib.request.build_opener(
        ph, urllib.request.HTTPSHandler(context=ctx))
    tmo = args.timeout / 1000.0
    for r in reqs:
        headers, names = joined(r["headers"])
        req = urllib.request.Request(
            r["url"], data=r["body"], method=r["method"],
            headers={names[k]: v for k, v in headers.items()})
        try:
            resp = opener.open(req, timeout=tmo)
        except urllib.error.HTTPError as e:     # a status >= 400: an answer
            resp = e
        with resp:
            body = resp.read()
            yield record(r["url"], resp.status, list(resp.headers.items()),
                         body)


def main():
    ap = argparse.ArgumentParser(
        description="sluice test HTTPS client (requests or urllib)")
    ap.add_argument("--urllib", action="store_true")
    ap.add_argument("-X", dest="method")
    ap.add_argument("-d", dest="data")
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--requests", dest="requests_json")
    ap.add_argument("--ca", default=os.environ.get("SLUICE_CA") or None)
    ap.add_argument("--timeout", type=float, default=30000)
    ap.add_argument("proxy", metavar="PROXY")
    ap.add_argument("urls", metavar="URL", nargs="*")
    args = ap.parse_args()

    body = None
    if args.data is not None:
        if args.data.startswith("@"):
            with open(args.data[1:], "rb") as f:
                body = f.read()
        else:
            body = args.data.encode()
    defaults = []
    for h in args.headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            ap.error("bad header: %r" % h)
        defaults.append((name.strip(), value.strip()))
    if args.requests_json:
        specs = json.loads(args.requests_json)
    elif args.urls:
        specs = [{"url": u} for u in args.urls]
    else:
        ap.error("no URL")
    reqs = []
    for sp in specs:
        b = sp.get("body", None)
        b = b.encode() if isinstance(b, str) else (b if b is not None
                                                   else body)
        reqs.append({
            "url": sp["url"],
            "method": sp.get("method") or args.method or (
                "POST" if b is not None else "GET"),
            "headers": defaults + header_pairs(sp.get("headers")),
            "body": b,
        })

    run = run_urllib if args.urllib else run_requests
    it = run(args, reqs)
    i = 0
    while True:
        try:
            rec = next(it)
        except StopIteration:
            break
        except Exception as e:      # the first failure ends the run
            code, inner = error_code(e)
            msg = str(e)
            if inner is not e and str(inner) not in msg:
                msg += ": " + str(inner)
            url = reqs[i]["url"]
            print(json.dumps({"url": url, "error": msg, "code": code}),
                  flush=True)
            sys.stderr.write("https_client.py: %s: %s (%s)\n"
                             % (url, msg, code))
            sys.exit(1)
        print(json.dumps(rec), flush=True)
        i += 1


if __name__ == "__main__":
    main()
