#!/usr/bin/env bash
# 50-clients: unmodified clients configured only by the environment, as
# SPEC's introduction promises (http_proxy=...): curl, Python urllib,
# wget; plus an HTTP/1.0 client, which must not get a chunked body.
#
# Each request carries "X-EZTHROTTLE-Client-Test: 1". The proxy strips
# X-EZTHROTTLE-* fields (checked in 20-forward), so an origin that sees
# the field was reached directly, not through the proxy.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
write_config
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT
MARK='X-EZTHROTTLE-Client-Test: 1'

dcurl -o "$TMP/direct" "$O/bytes/100000?seed=5"
want=$(sha "$TMP/direct")

# check CLIENT: $TMP/$CLIENT.echo holds /echo's JSON, $TMP/$CLIENT.bytes
# the 100000 bytes; both went through the proxy.
check() {
	local c=$1
	assert_eq GET "$(json "$TMP/$c.echo" 'd["method"]')" "$c: /echo method"
	assert_eq "/echo/$c" "$(json "$TMP/$c.echo" 'd["target"]')" \
		"$c: target at origin (origin-form)"
	assert_eq "" "$(json "$TMP/$c.echo" '",".join(k for k, v in d["headers"]
		if k.lower().startswith("x-ezthrottle"))')" \
		"$c: X-EZTHROTTLE-* at origin (request bypassed the proxy?)"
	assert_eq 100000 "$(wc -c < "$TMP/$c.bytes")" "$c: /bytes/100000 size"
	assert_eq "$want" "$(sha "$TMP/$c.bytes")" "$c: /bytes/100000 sha256"
}

say "curl with http_proxy in the environment"
# curl does not bypass the proxy for 127.0.0.1 unless no_proxy says so.
http_proxy=$PROXY no_proxy='' timeout 60 curl -sS -m 50 -H "$MARK" \
	-o "$TMP/curl.echo" "$O/echo/curl" \
	-o "$TMP/curl.bytes" "$O/bytes/100000?seed=5"
check curl

say "Python urllib.request with http_proxy in the environment"
# urllib.request.urlopen() takes the proxy from getproxies_environment()
# and bypasses it only for hosts listed in no_proxy (on Linux there is no
# implicit localhost bypass), so an empty no_proxy routes 127.0.0.1 through
# the proxy. The script checks that the environment proxy was picked up
# before it fetches.
http_proxy=$PROXY no_proxy='' timeout 60 "$PYTHON" - "$O" "$TMP" "$MARK" <<'EOF'
import sys, urllib.request
origin, tmp, mark = sys.argv[1:4]
proxies = urllib.request.getproxies_environment()
assert proxies.get("http", "").startswith("http://127.0.0.1:"), proxies
assert not urllib.request.proxy_bypass_environment("127.0.0.1:1"), "bypassed"
name, value = mark.split(": ")
for path, out in (("/echo/urllib", "urllib.echo"),
                  ("/bytes/100000?seed=5", "urllib.bytes")):
    req = urllib.request.Request(origin + path, headers={name: value})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, r.status
        open("%s/%s" % (tmp, out), "wb").write(r.read())
EOF
check urllib

say "wget with http_proxy in the environment"
command -v wget > /dev/null || skip "wget is needed"
http_proxy=$PROXY no_proxy='' timeout 60 wget -q -e use_proxy=yes \
	--header "$MARK" -O "$TMP/wget.echo" "$O/echo/wget"
http_proxy=$PROXY no_proxy='' timeout 60 wget -q -e use_proxy=yes \
	--header "$MARK" -O "$TMP/wget.bytes" "$O/bytes/100000?seed=5"
check wget

say "an HTTP/1.0 client gets no chunked body"
for path in "/bytes/100000?seed=5" "/chunked/100000?seed=5"; do
	s=$(http_status -0 "$O$path")
	assert_eq 200 "$s" "HTTP/1.0 GET $path"
	assert_eq "$want" "$(sha "$TMP/body")" "HTTP/1.0 GET $path sha256"
	# (An HTTP/1.1 status line is fine; chunked framing is not.)
	assert_no_grep '^[Tt]ransfer-[Ee]ncoding:.*chunked' \
		"$TMP/headers" "HTTP/1.0 GET $path: chunked response"
done
printf 'GET %s/chunked/5000?seed=5 HTTP/1.0\r\n\r\n' "$O" |
	raw_http "$PROXY_PORT" 5 > "$TMP/raw" 2>/dev/null
assert_eq 200 "$(raw_status "$TMP/raw")" "raw HTTP/1.0 GET /chunked/5000"
dcurl -o "$TMP/direct5k" "$O/bytes/5000?seed=5"
raw_body "$TMP/raw" > "$TMP/raw.body"
assert_eq "$(sha "$TMP/direct5k")" "$(sha "$TMP/raw.body")" \
	"raw HTTP/1.0 GET /chunked/5000: body (no chunk framing)"

say "ok"
