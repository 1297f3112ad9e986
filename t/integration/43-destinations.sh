#!/usr/bin/env bash
# 43-destinations: what the proxy refuses to reach or to pass back.
# An upstream header block over curl's limit is answered 502
# upstream_headers_too_large (not "Out of memory"). The daemon's own
# listeners are never destinations, by address, by any IPv6 spelling of
# it, or by name (after DNS): 403 destination_denied, and the admin
# listener is not reached. Cloud metadata addresses are denied in their
# IPv6 spellings (IPv4-mapped, -compatible, NAT64) too, also when the
# list only names the IPv4 address.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

start_origin
write_config
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "an upstream header block over curl's limit"
s=$(http_status "$O/bigheader/200000")
assert_error 502 upstream_headers_too_large "$s" "one 200 KB response field"
s=$(http_status "$O/bigheader/50000?count=8")
assert_error 502 upstream_headers_too_large "$s" "8 response fields of 50 KB"
s=$(http_status "$O/bigheader/1000?count=4")
assert_eq 200 "$s" "4 response fields of 1 KB"
assert_serving "huge upstream header blocks"

say "the daemon's own listeners are not destinations"
A=$ADMIN_PORT
P=$PROXY_PORT
for u in "http://127.0.0.1:$A/queues" "http://127.0.0.1:$P/" \
	"http://0.0.0.0:$A/queues" \
	"http://[::ffff:127.0.0.1]:$A/queues" "http://[::ffff:7f00:1]:$A/queues" \
	"http://[64:ff9b::7f00:1]:$A/queues" "http://[::127.0.0.1]:$A/queues" \
	"http://localhost:$A/queues"; do
	s=$(http_status "$u")
	assert_error 403 destination_denied "$s" "$u"
	assert_no_grep '"queues"' "$TMP/body" "the admin's answer to $u"
done
assert_serving "requests to the daemon's own listeners"

say "metadata addresses in every spelling"
for h in 169.254.169.254 '[::ffff:169.254.169.254]' '[::ffff:a9fe:a9fe]' \
	'[::a9fe:a9fe]' '[::169.254.169.254]' '[64:ff9b::a9fe:a9fe]' \
	'[64:ff9b::169.254.169.254]' '[fd00:ec2::254]'; do
	s=$(http_status "http://$h/latest/meta-data/")
	assert_error 403 destination_denied "$s" "http://$h/"
done

say "a deny list of one IPv4 address covers its IPv6 spellings"
stop_sluiced
write_config - <<EOF
deny_destinations: [127.0.0.1/32]
EOF
start_sluiced
for h in 127.0.0.1 '[::ffff:127.0.0.1]' '[::127.0.0.1]' '[64:ff9b::7f00:1]'; do
	s=$(http_status "http://$h:$ORIGIN_PORT/echo/deny-me")
	assert_error 403 destination_denied "$s" "http://$h:$ORIGIN_PORT/"
done
s=$(http_status "http://localhost:$ORIGIN_PORT/echo/deny-me")
assert_error 403 destination_denied "$s" "localhost (after DNS)"
assert_eq 0 "$(origin_count '^/echo/deny-me')" "requests that reached the origin"

say "a wildcard listener: every local address with its port"
stop_sluiced
write_config
start_sluiced -a 0.0.0.0:0
A=$ADMIN_PORT
for u in "http://127.0.0.1:$A/queues" "http://127.9.9.9:$A/queues" \
	"http://0.0.0.0:$A/queues" "http://localhost:$A/queues"; do
	s=$(http_status "$u")
	assert_error 403 destination_denied "$s" "$u (admin on 0.0.0.0)"
done
ip=$(hostname -I 2>/dev/null | awk '{print $1}')
if [ -n "$ip" ]; then
	s=$(http_status "http://$ip:$A/queues")
	assert_error 403 destination_denied "$s" "the host's address $ip"
fi
s=$(http_status "http://127.0.0.1:$ORIGIN_PORT/echo/x")
assert_eq 200 "$s" "another port of the same address"

say "a webhook to the daemon's own admin listener is not delivered"
stop_sluiced
write_config - <<EOF
webhooks:
  retry_schedule: [0s, 1h]
EOF
start_sluiced
s=$(http_status -X POST --data-binary '{}' \
	-H "X-EZTHROTTLE-WEBHOOK: http://localhost:$ADMIN_PORT/hook" \
	"http://127.0.0.1:$ORIGIN_PORT/reply/200")
assert_eq 202 "$s" "a job with a webhook to the admin port"
id=$(json "$TMP/body" 'd["job_id"]')
n=0
for _ in $(seq 100); do
	direct_status "http://127.0.0.1:$ADMIN_PORT/jobs/$id" > /dev/null
	n=$(json "$TMP/body" 'd["deliveries"][0]["attempts"]' 2>/dev/null || echo 0)
	[ "$n" -ge 1 ] && break
	sleep 0.1
done
assert_eq 1 "$n" "delivery attempts"
assert_eq null "$(json "$TMP/body" 'd["deliveries"][0]["last_status"]')" \
	"the delivery's HTTP status (none: never connected)"
say "delivery error: $(json "$TMP/body" 'd["deliveries"][0]["last_error"]')"

say "a literal webhook address that is denied is refused at intake"
for hook in "http://127.0.0.1:$ADMIN_PORT/hook" "http://[::ffff:127.0.0.1]:$PROXY_PORT/" \
	"http://[::ffff:169.254.169.254]/latest" "http://[64:ff9b::a9fe:a9fe]/"; do
	s=$(http_status -X POST --data-binary '{}' -H "X-EZTHROTTLE-WEBHOOK: $hook" \
		"http://127.0.0.1:$ORIGIN_PORT/echo/hook-denied")
	assert_error 400 webhook_denied "$s" "webhook $hook"
done
assert_eq 0 "$(origin_count 'hook-denied')" "no refused job reached the origin"
say "ok"
