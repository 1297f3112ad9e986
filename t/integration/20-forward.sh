#!/usr/bin/env bash
# 20-forward: plain HTTP forwarding. Every method, the request target sent
# upstream byte for byte, statuses and response headers returned intact,
# hop-by-hop and X-EZTHROTTLE-* request headers stripped (SPEC section 8),
# hop-by-hop response headers stripped, HEAD, 204, keep-alive.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
write_config
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

# echo_header NAME: values of request header NAME the origin saw, from the
# /echo JSON in $TMP/body, one a line.
echo_header() {
	json "$TMP/body" "'\\n'.join(v for k, v in d['headers']
		if k.lower() == '$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')')"
}

say "every method"
for m in GET POST PUT PATCH DELETE OPTIONS; do
	case $m in
	POST|PUT|PATCH)
		s=$(http_status -X "$m" --data-binary "payload of $m" \
			-H 'Content-Type: text/plain' "$O/echo/$m") ;;
	*)	s=$(http_status -X "$m" "$O/echo/$m") ;;
	esac
	assert_eq 200 "$s" "$m status"
	assert_eq "$m" "$(json "$TMP/body" 'd["method"]')" "$m: method at origin"
	assert_eq "/echo/$m" "$(json "$TMP/body" 'd["target"]')" "$m: target"
	case $m in
	POST|PUT|PATCH)
		assert_eq "payload of $m" "$(json "$TMP/body" 'd["body"]')" \
			"$m: body at origin" ;;
	*)	assert_eq 0 "$(json "$TMP/body" 'd["body_length"]')" \
			"$m: body length at origin" ;;
	esac
	assert_eq "127.0.0.1:$ORIGIN_PORT" "$(echo_header Host)" "$m: Host"
done
assert_eq 1 "$(origin_count '^/echo/POST$')" "POST arrived once"

say "HEAD: headers with Content-Length, no body"
s=$(http_status -I "$O/bytes/12345")
assert_eq 200 "$s" "HEAD status"
assert_eq 12345 "$(header Content-Length)" "HEAD Content-Length"
assert_eq HEAD "$(tail -n 1 "$TMP/origin.requests" | json - 'd["method"]')" \
	"method at origin for HEAD"
# curl -I never reads a body; a raw socket shows whether one was sent.
for path in /bytes/12345 /chunked/12345 /echo; do
	printf 'HEAD %s%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' \
		"$O" "$path" "$ORIGIN_PORT" | raw_http "$PROXY_PORT" 5 \
		> "$TMP/raw" 2> "$TMP/raw.err"
	assert_eq 200 "$(raw_status "$TMP/raw")" "raw HEAD $path status"
	assert_eq 0 "$(raw_body "$TMP/raw" | wc -c)" "raw HEAD $path: body bytes"
	assert_grep 'raw: eof' "$TMP/raw.err" "raw HEAD $path: connection closed"
done

say "the request target goes upstream byte for byte"
target='/echo/a%20b/%2F/../x?y=%41%2B+z&y=2&flag'
s=$(http_status --path-as-is "$O$target")
assert_eq 200 "$s" "odd target status"
assert_eq "$target" "$(json "$TMP/body" 'd["target"]')" "odd target at origin"
for target in '/echo/%7e%7E/;p=1/././/?' '/echo?a=%zz&b=%00&c=%e2%82%ac' \
	"/echo/it's/*/(x)/\$!~@:,"; do
	printf 'GET %s%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' \
		"$O" "$target" "$ORIGIN_PORT" | raw_http "$PROXY_PORT" 5 \
		> "$TMP/raw" 2> "$TMP/raw.err"
	assert_eq 200 "$(raw_status "$TMP/raw")" "raw target '$target' status"
	raw_body "$TMP/raw" > "$TMP/body"
	assert_eq "$target" "$(json "$TMP/body" 'd["target"]')" \
		"raw target '$target' at origin"
done

say "absolute-form without a path: upstream target is /"
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' \
	"$O" "$ORIGIN_PORT" | raw_http "$PROXY_PORT" 5 > "$TMP/raw" 2>/dev/null
assert_eq 200 "$(raw_status "$TMP/raw")" "GET http://host:port status"
raw_body "$TMP/raw" > "$TMP/body"
assert_eq / "$(json "$TMP/body" 'd["target"]')" "GET http://host:port target"

say "the absolute URI, not the Host field, names the destination"
printf 'GET %s/echo/host HTTP/1.1\r\nHost: wrong.invalid\r\nConnection: close\r\n\r\n' \
	"$O" | raw_http "$PROXY_PORT" 5 > "$TMP/raw" 2>/dev/null
assert_eq 200 "$(raw_status "$TMP/raw")" "mismatched Host: status"
raw_body "$TMP/raw" > "$TMP/body"
assert_eq "127.0.0.1:$ORIGIN_PORT" "$(echo_header Host)" \
	"mismatched Host: Host at origin"

say "statuses come back intact"
for code in 200 201 202 301 400 401 403 404 409 418 422 500 501 599; do
	s=$(http_status "$O/status/$code")
	assert_eq "$code" "$s" "/status/$code"
	assert_eq "status $code" "$(cat "$TMP/body")" "/status/$code body"
done
assert_eq 1 "$(origin_count '^/status/500$')" "500 was not retried (max_retries 0)"

say "204 No Content, then the same connection goes on"
: > "$TMP/w"
timeout 60 curl -sS -m 50 -x "$PROXY" -o "$TMP/b1" -o "$TMP/b2" \
	-w '%{http_code} %{num_connects}\n' "$O/status/204" "$O/echo/after-204" \
	> "$TMP/w"
assert_eq "204 1
200 0" "$(cat "$TMP/w")" "204 then 200 on one connection"
assert_eq 0 "$(wc -c < "$TMP/b1")" "204 body bytes"

say "response headers come back intact"
s=$(http_status "$O/headers?X-Custom=hello%20world&Set-Cookie=a%3D1%3B%20Path%3D%2F&Set-Cookie=b%3D2&X-Empty=&Cache-Control=no-cache&ETag=%22v1%22")
assert_eq 200 "$s" "/headers status"
assert_eq "hello world" "$(header X-Custom)" "X-Custom"
assert_eq "a=1; Path=/
b=2" "$(header Set-Cookie)" "two Set-Cookie fields, in order"
assert_eq "no-cache" "$(header Cache-Control)" "Cache-Control"
assert_eq '"v1"' "$(header ETag)" "ETag"
grep -qi '^X-Empty:' "$TMP/headers" || fail "empty X-Empty field lost"
assert_eq 8 "$(header Content-Length)" "Content-Length of /headers"
assert_eq "headers" "$(cat "$TMP/body")" "/headers body"

say "hop-by-hop response headers are not returned"
s=$(http_status "$O/headers?Keep-Alive=timeout%3D5&Connection=X-Drop-Me&X-Drop-Me=1&Proxy-Authenticate=Basic%20realm%3Dx&Upgrade=h2c&Trailer=X-T&Proxy-Connection=keep-alive&X-Kept=yes")
assert_eq 200 "$s" "/headers (hop-by-hop) status"
assert_eq yes "$(header X-Kept)" "end-to-end field next to hop-by-hop ones"
for h in Keep-Alive X-Drop-Me Proxy-Authenticate Upgrade Trailer \
	Proxy-Connection; do
	assert_eq "" "$(header "$h")" "hop-by-hop response field $h"
done
header Connection | grep -qi 'x-drop-me' &&
	fail "Connection field naming X-Drop-Me passed on"

say "hop-by-hop and X-EZTHROTTLE-* request headers are not forwarded"
s=$(http_status "$O/echo/hop" \
	-H 'Connection: X-Foo, X-Bar' -H 'X-Foo: 1' -H 'X-Bar: 2' \
	-H 'Keep-Alive: 5' -H 'TE: trailers' -H 'Trailer: X-T' \
	-H 'Upgrade: websocket' -H 'Proxy-Connection: keep-alive' \
	-H 'Proxy-Authorization: Basic eHh4Onl5eQ==' \
	-H 'X-EZTHROTTLE-RPS: 5' -H 'X-Ezthrottle-Anything: y' \
	-H 'x-ezthrottle-max-retries: 0' \
	-H 'Authorization: Bearer secret-token' -H 'X-Custom: kept' \
	-H 'X-Dup: 1' -H 'X-Dup: 2' -H 'X-Api-Key: k1')
assert_eq 200 "$s" "hop-by-hop request: status"
json "$TMP/body" '"\n".join(k.lower() for k, v in d["headers"])' \
	> "$TMP/names"
for h in connection x-foo x-bar keep-alive te trailer upgrade \
	proxy-connection proxy-authorization x-ezthrottle-rps \
	x-ezthrottle-anything x-ezthrottle-max-retries transfer-encoding; do
	assert_no_grep "^$h\$" "$TMP/names" "request field '$h' at origin"
done
assert_eq "Bearer secret-token" "$(echo_header Authorization)" "Authorization"
assert_eq kept "$(echo_header X-Custom)" "X-Custom"
assert_eq k1 "$(echo_header X-Api-Key)" "X-Api-Key"
assert_eq "1
2" "$(echo_header X-Dup)" "repeated X-Dup, in order"
assert_match '^curl/' "$(echo_header User-Agent)" "User-Agent"

say "keep-alive: several requests on one client connection"
timeout 60 curl -sS -m 50 -x "$PROXY" -o /dev/null -o /dev/null \
	-o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
	"$O/echo/k1" "$O/bytes/5000" "$O/chunked/7000" "$O/status/404" \
	> "$TMP/w"
assert_eq "200 1
200 0
200 0
404 0" "$(cat "$TMP/w")" "four requests, one connection"
timeout 60 curl -sS -m 50 -x "$PROXY" -o /dev/null -o /dev/null \
	-w '%{http_code} %{num_connects}\n' --data-binary 'first' \
	"$O/upload" "$O/upload" > "$TMP/w"
assert_eq "200 1
200 0" "$(cat "$TMP/w")" "two POSTs, one connection"
# "Connection: close" from the origin ends the upstream connection only.
timeout 60 curl -sS -m 50 -x "$PROXY" -o /dev/null -o /dev/null \
	-o /dev/null -w '%{http_code} %{num_connects}\n' \
	"$O/headers?Connection=close" "$O/echo/k2" "$O/headers?Connection=close" \
	> "$TMP/w"
assert_eq "200 1
200 0
200 0" "$(cat "$TMP/w")" "origin closing its connection keeps the client's"

say "pipelined requests are answered in order"
printf 'GET %s/echo/p1 HTTP/1.1\r\nHost: x\r\n\r\nGET %s/echo/p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
	"$O" "$O" | raw_http "$PROXY_PORT" 5 > "$TMP/raw" 2>/dev/null
assert_eq 2 "$(grep -c '^HTTP/1.1 200' "$TMP/raw")" "two pipelined answers"
assert_match '/echo/p1.*/echo/p2' "$(tr -d '\r\n' < "$TMP/raw")" \
	"pipelined answers in order"

assert_serving "the forwarding tests"
say "ok"
