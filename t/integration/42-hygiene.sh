#!/usr/bin/env bash
# 42-hygiene: what a review of the proxy confirmed, kept by a test each
# (SPEC section 8): userinfo in the target is refused, the target's
# authority beats the Host field, redirects are returned, never followed,
# "allow" looks at the socket's address only (X-Forwarded-For and
# Forwarded are not trusted), Content-Length beside Transfer-Encoding is
# refused on a connection's first request too, the state directory's
# files are private, and no credential reaches the log (debug level,
# access log on).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
write_config - <<'EOF'
log_level: debug
access_log: true
EOF
start_sluiced

say "userinfo in the target: 400, never sent"
printf 'GET http://user:SECRET-PW@127.0.0.1:%s/echo/userinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
	"$ORIGIN_PORT" | raw_http "$PROXY_PORT" 3 > "$TMP/raw" 2> /dev/null
assert_eq 400 "$(raw_status "$TMP/raw")" "http://user:pw@host/"
assert_eq 0 "$(origin_count 'userinfo')" "the userinfo request did not reach the origin"

say "the target's authority beats the Host field"
s=$(pcurl -o "$TMP/body" -w '%{http_code}' -H 'Host: evil.example' \
	"$O/echo/host")
assert_eq 200 "$s" "a request with a lying Host field"
assert_eq "127.0.0.1:$ORIGIN_PORT" "$(json "$TMP/body" \
	'[v for n, v in d["headers"] if n.lower() == "host"][0]')" \
	"the origin saw the target's authority as Host"
assert_no_grep 'evil\.example' "$TMP/origin.requests" \
	"the client's Host field was not forwarded"

say "redirects are returned to the client, not followed"
s=$(pcurl -o /dev/null -D "$TMP/headers" -w '%{http_code}' \
	"$O/reply/302?Location=$O/echo/redirected")
assert_eq 302 "$s" "a 302 from the origin"
assert_grep "Location: $O/echo/redirected" "$TMP/headers" \
	"the Location field reached the client"
assert_eq 0 "$(origin_count '^/echo/redirected')" "the daemon did not follow it"

say "Content-Length with Transfer-Encoding on a first request: 400"
printf 'POST %s/echo/clte HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' \
	"$O" | raw_http "$PROXY_PORT" 3 > "$TMP/raw" 2> /dev/null
assert_eq 400 "$(raw_status "$TMP/raw")" "CL + TE"
assert_eq 0 "$(origin_count 'clte')" "CL + TE did not reach the origin"

say "no credential in the log, at debug level with the access log"
pcurl -o /dev/null -H 'Authorization: Bearer SECRET-BEARER' \
	"$O/echo/cred?api_key=SECRET-QUERY"
pcurl -o /dev/null -H 'X-Api-Key: SECRET-APIKEY' "$O/status/429"
pcurl -o /dev/null -H 'Proxy-Authorization: Basic SECRET-PROXY' "$O/echo/p"
assert_grep 'access .*path=./echo/cred' "$TMP/sluiced.log" \
	"the access log has the request"
assert_no_grep 'SECRET' "$TMP/sluiced.log" "no credential in the log"
assert_no_grep 'SECRET-PROXY' "$TMP/origin.requests" \
	"Proxy-Authorization is not forwarded"

say "the state directory's files are private"
for f in "$TMP"/state/*; do
	m=$(stat -c %a "$f")
	assert_eq 600 "$m" "mode of $(basename "$f")"
done

say "allow looks at the socket, not at X-Forwarded-For or Forwarded"
stop_sluiced
# A state directory the daemon makes itself is its own.
start_sluiced --allow 10.0.0.0/8 -s "$TMP/fresh-state"
assert_eq 700 "$(stat -c %a "$TMP/fresh-state")" "a state directory made by the daemon"
s=$(http_status -H 'X-Forwarded-For: 10.1.2.3' -H 'Forwarded: for=10.1.2.3' \
	-H 'X-Real-IP: 10.1.2.3' "$O/echo/xff")
assert_error 403 client_not_allowed "$s" "a loopback client claiming 10.1.2.3"
assert_eq 0 "$(origin_count 'xff')" "the refused request did not reach the origin"
