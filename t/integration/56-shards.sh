#!/usr/bin/env bash
# 56-shards: many clients at once. The front spreads connections over
# libmicrohttpd daemons of at most 256 connections (src/front_shards.c): 600
# clients waiting together need three, every one is answered exactly once,
# and a second wave reuses the freed slots instead of making more.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# 600 client sockets here and 600 in the daemon, beside origin and curl's.
ulimit -n 4096 2>/dev/null || skip "cannot raise the open-file limit to 4096"

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
# One worker: the count below is of one shard set (with several, the
# kernel decides how many connections each worker's listener accepts).
write_config - <<'EOF'
workers: 1
max_in_flight: 64
defaults:
  rps: 400
  concurrency: 50
EOF
start_sluiced --log-level debug

for wave in 1 2; do
	say "wave $wave: 600 clients at once"
	fire "wave$wave" 600 "$O/echo/wave$wave"
	ok=$(fired "wave$wave" "sum(r['status'] == 200 for r in rs)")
	assert_eq 600 "$ok" "wave $wave: answers 200 (others: $(fired "wave$wave" \
		"sorted(set((r['status'], r.get('error', '')) for r in rs if r['status'] != 200))"))"
	mismatch=$(fired "wave$wave" \
		"sum(not r['body'].startswith('{') or ('/echo/wave$wave/%d' % r['i']) not in r['body'] for r in rs)")
	assert_eq 0 "$mismatch" "wave $wave: answers that are not the client's own"
	assert_eq 600 "$(origin_count "^/echo/wave$wave/")" \
		"wave $wave: requests at the origin"
done

made=$(grep -c 'http front: shard [0-9]* made' "$TMP/sluiced.log" || true)
say "shards made beyond the first: $made"
# 600 at once need 3 shards (2 made beyond the first); the second wave
# reuses them.
assert_eq 2 "$made" "shards made for 600 clients, twice"
sluiced_alive || fail "sluiced died"
say "ok"
