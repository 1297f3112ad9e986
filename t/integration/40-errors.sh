#!/usr/bin/env bash
# 40-errors: bad input gets a clear answer and nothing else breaks (SPEC
# section 8): origin-form requests, malformed requests, oversized headers,
# unknown schemes, bad CONNECT heads, bad webhook jobs, upstream connect / DNS /
# timeout failures, denied destinations, clients outside "allow", slow and
# idle clients.
# After each error a normal request must still succeed.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# A second origin on 127.0.0.2, reachable but denied: were the deny list
# ignored, the request would arrive there.
start_origin denied 127.0.0.2
DENIED_PORT=$ORIGIN_PORT
start_origin
O=http://127.0.0.1:$ORIGIN_PORT

write_config - <<'EOF'
deny_destinations: [127.0.0.2/32, 169.254.169.254/32]
client_timeout: 1s
EOF
start_sluiced

# raw REQUEST_PRINTF_FORMAT [ARGS...]: sends the request on a new
# connection (the requests say "Connection: close", so the answer ends at
# EOF), response in $TMP/raw, header block in $TMP/headers, body in
# $TMP/body; prints the status.
raw() {
	local fmt=$1
	shift
	# shellcheck disable=SC2059 # the format is the argument
	printf "$fmt" "$@" | raw_http "$PROXY_PORT" 3 > "$TMP/raw" 2> "$TMP/raw.err"
	raw_body "$TMP/raw" > "$TMP/body"
	tr -d '\r' < "$TMP/raw" | sed '/^$/q' > "$TMP/headers"
	# One request, one answer: a second status line means a garbled
	# response; print it as status "garbled" so the caller's check fails.
	if [ "$(grep -a -c '^HTTP/1\.[01] [0-9]' "$TMP/raw")" -gt 1 ]; then
		echo "garbled($(raw_status "$TMP/raw"), $(grep -a -c '^HTTP/1\.[01] [0-9]' "$TMP/raw") status lines)"
		return
	fi
	raw_status "$TMP/raw"
}

say "origin-form request (not a proxy request): 400"
s=$(direct_status "http://127.0.0.1:$PROXY_PORT/")
assert_error 400 not_a_proxy_request "$s" "origin-form GET /"
assert_match '[Pp]roxy' "$(json "$TMP/body" 'd["message"]')" \
	"origin-form message mentions the proxy"
assert_serving "an origin-form request"

say "malformed requests: 400"
s=$(raw 'GARBAGE\r\n\r\n')
assert_eq 400 "$s" "request line 'GARBAGE'"
assert_serving "a garbage request line"
s=$(raw 'GET %s/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n' "$O")
assert_eq 400 "$s" "Content-Length: abc"
s=$(raw 'POST %s/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd' "$O")
assert_eq 400 "$s" "two different Content-Length fields"
s=$(raw 'GET %s/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nno colon here\r\n\r\n' "$O")
assert_eq 400 "$s" "a header line without a colon"
s=$(raw 'POST %s/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\nabc' "$O")
assert_eq 400 "$s" "Content-Length: -1"
s=$(raw 'POST %s/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip\r\n\r\nabc' "$O")
assert_eq 400 "$s" "Transfer-Encoding without chunked (RFC 9112 6.3)"
s=$(raw 'GET http://[::1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
assert_eq 400 "$s" "unparsable absolute URI"
s=$(raw 'GET http:///echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
assert_eq 400 "$s" "absolute URI without a host"
s=$(raw 'GET http://127.0.0.1:99999/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
assert_eq 400 "$s" "port out of range"
assert_eq 0 "$(origin_count '^/echo$')" "malformed requests reached the origin"
assert_serving "malformed requests"

say "oversized header block: 431"
big=$(head -c 65536 /dev/zero | tr '\0' a)
s=$(http_status -H "X-Big: $big" "$O/echo/big-header")
assert_eq 431 "$s" "one 64 KiB header field"
assert_serving "a 64 KiB header"
pad=$(printf '%300s' '' | tr ' ' b)
hdrs=()
for i in $(seq 300); do hdrs+=(-H "X-Many-$i: $pad"); done
s=$(http_status "${hdrs[@]}" "$O/echo/many-headers")
assert_eq 431 "$s" "300 header fields of 300 bytes"
assert_eq 0 "$(origin_count 'big-header|many-headers')" \
	"oversized requests reached the origin"
assert_serving "many headers"

say "request and response heads share max_header (default 8KiB)"
h6=$(head -c 6000 /dev/zero | tr '\0' a)
s=$(http_status -H "X-Six: $h6" "$O/echo/six-k-header")
assert_eq 200 "$s" "a 6000-byte request field under the default max_header"
s=$(http_status "$O/headers?X-Two=$(head -c 2000 /dev/zero | tr '\0' c)")
assert_eq 200 "$s" "a 2000-byte response field"
# The URL (5000 bytes) and the echoed field (5000) do not fit in 8 KiB:
# a JSON 502 that says so, not a dropped connection.
s=$(http_status "$O/headers?X-Five=$(head -c 5000 /dev/zero | tr '\0' c)")
assert_error 502 upstream_headers_too_large "$s" "a response head over max_header"
assert_serving "a response head over max_header"

say "unknown scheme: 400"
s=$(raw 'GET ftp://127.0.0.1:%s/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$ORIGIN_PORT")
assert_error 400 bad_request "$s" "ftp:// target"
s=$(raw 'GET gopher://127.0.0.1:%s/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$ORIGIN_PORT")
assert_error 400 bad_request "$s" "gopher:// target"
assert_serving "unknown schemes"

say "CONNECT: malformed 400, too large 431, denied 403"
# Tunnels themselves are tested in 80-https.sh; here, the refusals.
s=$(raw 'CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
assert_error 400 bad_request "$s" "CONNECT without a port"
s=$(raw 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nBad Field: x\r\n\r\n' "$ORIGIN_PORT")
assert_error 400 bad_request "$s" "CONNECT with a malformed field"
s=$(raw 'CONNECT 127.0.0.2:%s HTTP/1.1\r\nHost: 127.0.0.2:%s\r\n\r\n' \
	"$DENIED_PORT" "$DENIED_PORT")
assert_error 403 destination_denied "$s" "CONNECT to a denied address"
s=$(raw 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nX-Big: %s\r\n\r\n' \
	"$ORIGIN_PORT" "$(head -c 9000 /dev/zero | tr '\0' a)")
assert_error 431 header_too_large "$s" "CONNECT head over max_header"
assert_eq 0 "$(grep -c '^{.*CONNECT' "$TMP/denied.requests" 2>/dev/null || true)" \
	"a refused CONNECT reached the denied origin"
assert_serving "CONNECT"

say "webhook jobs with a bad or denied webhook: 400, nothing is sent"
# Jobs themselves are tested in 70-jobs.sh and after.
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: ftp://127.0.0.1:$ORIGIN_PORT/hook" \
	"$O/echo/webhook-job")
assert_error 400 invalid_webhook "$s" "X-EZTHROTTLE-WEBHOOK: ftp://..."
s=$(http_status -H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.2:$DENIED_PORT/hook" \
	"$O/echo/webhook-job")
assert_error 400 webhook_denied "$s" "X-EZTHROTTLE-WEBHOOK to a denied address"
assert_eq 0 "$(grep -c 'webhook-job' "$TMP/origin.requests" || true)" \
	"a refused webhook request reached the origin"
assert_serving "a webhook request"

say "upstream connect failure: 502"
cport=$(closed_port)
s=$(http_status "http://127.0.0.1:$cport/echo")
assert_error 502 upstream_connect "$s" "closed upstream port"
assert_match '[Cc]onnect' "$(json "$TMP/body" 'd["message"]')" \
	"connect failure message"
assert_serving "a connect failure"

say "upstream DNS failure: 502"
s=$(http_status "http://nonexistent.invalid/echo")
assert_error 502 upstream_dns "$s" "unresolvable host"
assert_match '[Dd][Nn][Ss]|resolve' "$(json "$TMP/body" 'd["message"]')" \
	"DNS failure message"
assert_serving "a DNS failure"

say "upstream closes without answering: 502"
s=$(http_status "$O/close")
assert_error 502 'upstream_error|upstream_connect' "$s" "origin closed the connection"
assert_serving "an upstream that hangs up"

say "denied destination: 403"
s=$(http_status "http://127.0.0.2:$DENIED_PORT/echo/denied")
assert_error 403 destination_denied "$s" "127.0.0.2 (deny_destinations)"
# The same address spelt as one decimal number must be denied too.
s=$(http_status "http://2130706434:$DENIED_PORT/echo/denied-decimal")
assert_error 403 'destination_denied|bad_request' "$s" "127.0.0.2 as 2130706434"
s=$(raw 'GET http://2130706434:%s/echo/denied-raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
	"$DENIED_PORT")
[ "$s" = 403 ] || [ "$s" = 400 ] ||
	fail "raw GET http://2130706434:port/: expected 403 or 400, got '$s'"
assert_eq 0 "$(origin_count . denied)" "requests reached the denied origin"
assert_serving "denied destinations"

say "slow client: connection closed after client_timeout (1 s)"
printf 'GET %s/echo/slow-cli' "$O" |
	raw_http "$PROXY_PORT" 4 > "$TMP/raw" 2> "$TMP/raw.err"
assert_grep 'raw: (eof|reset) after' "$TMP/raw.err" \
	"half a request line, then silence: connection closed"
t=$(sed -n 's/.* after \([0-9.]*\) s/\1/p' "$TMP/raw.err")
say "closed after $t s"
if [ -s "$TMP/raw" ]; then
	assert_match '^(400|408)$' "$(raw_status "$TMP/raw")" "slow client answer"
fi
: | raw_http "$PROXY_PORT" 4 > "$TMP/raw" 2> "$TMP/raw.err"
assert_grep 'raw: (eof|reset) after' "$TMP/raw.err" \
	"idle connection: closed after client_timeout"
# Bytes trickling in (one every 0.3 s) must not keep a request alive forever.
timeout 20 "$PYTHON" - "$PROXY_PORT" "$O" > "$TMP/drip" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
req = ("GET %s/echo/drip HTTP/1.1\r\nHost: x\r\n" % sys.argv[2]).encode()
req += b"X-Pad: " + b"p" * 200
t0 = time.monotonic()
try:
    for b in req:
        s.send(bytes([b]))
        time.sleep(0.3)
        if time.monotonic() - t0 > 6:
            break
    print("still open after %.1f s" % (time.monotonic() - t0))
except (BrokenPipeError, ConnectionResetError):
    print("closed after %.1f s" % (time.monotonic() - t0))
EOF
assert_grep '^closed after' "$TMP/drip" \
	"a client trickling a request byte by byte"
assert_serving "slow clients"

say "upstream timeout: 504 after sync_timeout"
stop_sluiced
write_config - <<'EOF'
sync_timeout: 500ms
EOF
start_sluiced
t0=$(date +%s%N)
s=$(http_status "$O/slow/2500")
ms=$((($(date +%s%N) - t0) / 1000000))
assert_error 504 'upstream_timeout|timeout' "$s" "/slow/2500 with sync_timeout 500ms"
[ "$ms" -lt 1750 ] || fail "504 came after $ms ms, sync_timeout is 500 ms"
say "504 after $ms ms"
assert_serving "an upstream timeout"

say "client outside allow: 403"
stop_sluiced
start_sluiced --allow 10.0.0.0/8
s=$(http_status "$O/echo/not-allowed")
assert_error 403 client_not_allowed "$s" "client 127.0.0.1, --allow 10.0.0.0/8"
assert_eq 0 "$(origin_count 'not-allowed')" "refused client's request reached the origin"
sluiced_alive || fail "sluiced died after refusing a client"
stop_sluiced
start_sluiced --allow 10.0.0.0/8 --allow 127.0.0.0/8
s=$(http_status "$O/echo/allowed")
assert_eq 200 "$s" "--allow repeated: second network allowed"

say "max_header raised: a 12 KiB request field passes"
stop_sluiced
write_config - <<'EOF2'
max_header: 32KiB
EOF2
start_sluiced
h12=$(head -c 12288 /dev/zero | tr '\0' a)
s=$(http_status -H "X-Twelve: $h12" "$O/echo/twelve-k-header")
assert_eq 200 "$s" "a 12 KiB request field with max_header 32KiB"
s=$(http_status -H "X-Big: $big" "$O/echo/big-header-32k")
assert_eq 431 "$s" "a 64 KiB request field with max_header 32KiB"

say "ok"
