#!/usr/bin/env bash
# 65-fairness: deficit round robin between the queues of a destination
# that share its aggregate_rps (SPEC section 2: "a queue that floods
# cannot delay a light queue by more than one round"). Key A floods a
# destination limited to 10 req/s in all with 60 requests; once they wait,
# key B sends 3: B gets every other slot, so its 3 requests are done within
# about 1 s (at the client, curl's time_total), long before A's flood
# drains (about 6 s), and at the origin B's arrivals sit between A's, not
# after them; the aggregate rate itself is respected. With a weight of 3
# for B's key (keys: in the configuration, by key hash), two floods share
# the slots 3:1.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# order: the arrivals at the origin of /echo/A/... and /echo/B/..., in
# order, as "A" and "B" one a line with the time (s) after the first.
order() {
	"$PYTHON" -c '
import json, re, sys
t0 = None
for line in open(sys.argv[1]):
    d = json.loads(line)
    m = re.match(r"/echo/([AB])/", d["target"])
    if m:
        t0 = d["time"] if t0 is None else t0
        print(m.group(1), "%.3f" % (d["time"] - t0))
' "$TMP/origin.requests"
}

# keys: the key hashes of the queues in a fresh /queues, sorted.
keys() {
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	json "$TMP/queues" '"\n".join(sorted(str(q["key"]) for q in d["list"]))'
}

start_origin
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 10
    concurrency: 100
    aggregate_rps: 10
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT

say "key A floods with 60 requests"
fire flood 60 "$O/echo/A" 'Authorization: Bearer A' &
FLOOD=$!
# Wait until most of the flood is queued.
for _ in $(seq 200); do
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	[ "$(json "$TMP/queues" 'd["waiting"]')" -ge 40 ] && break
	sleep 0.05
done
waiting=$(json "$TMP/queues" 'd["waiting"]')
[ "$waiting" -ge 40 ] || fail "only $waiting of A's 60 requests ever waited"

say "key B sends 3 requests while $waiting of A's wait"
keys_a=$(keys)
pids=()
for i in 1 2 3; do
	pcurl -o /dev/null -w '%{http_code} %{time_total}\n' \
		-H 'Authorization: Bearer B' "$O/echo/B/$i" > "$TMP/b.$i" 2>&1 &
	pids+=($!)
done
# B's key while its queue exists: an idle queue that holds nothing is
# freed a second after its last request.
kB=
for _ in $(seq 100); do
	kB=$(LC_ALL=C comm -13 <(printf '%s\n' "$keys_a") <(keys))
	[ -z "$kB" ] || break
	sleep 0.02
done
for p in "${pids[@]}"; do wait "$p" || true; done
wait "$FLOOD" || true

assert_eq 60 "$(fired flood 'sum(r["status"] == 200 for r in rs)')" \
	"A's requests answered 200"
for i in 1 2 3; do
	read -r code secs < "$TMP/b.$i"
	say "B $i: $code in ${secs}s"
	assert_eq 200 "$code" "B's request $i"
	# Every other slot at 10 req/s: 0.6 s; 1.5 s leaves room for a loaded
	# machine and still is far from A's 6 s.
	ge 1.5 "$secs" || fail "B's request $i took ${secs}s behind A's flood"
done

order > "$TMP/order"
# B's 3 arrivals: how many of A's came between the first of B and the last
# of B, and how many of A's came after the last of B.
read -r a_between a_after span < <(awk '
	$1 == "B" { nb++; if (!fb) fb = NR; lb = NR }
	END {
		n = 0; m = 0
		while ((getline l < FILENAME) > 0) {
			split(l, f, " "); i++
			if (f[1] == "A" && i > fb && i < lb) n++
			if (f[1] == "A" && i > lb) m++
			last = f[2]
		}
		print n, m, last
	}' "$TMP/order")
say "A arrivals between B's first and last: $a_between; after B's last: $a_after; all in ${span}s"
[ "$a_between" -le 4 ] ||
	fail "$a_between of A's arrivals between B's first and last (DRR: about 2)"
[ "$a_after" -ge 20 ] ||
	fail "only $a_after of A's 60 arrivals after B's last: B waited behind A"
# The aggregate rate holds: 63 arrivals at 10 req/s take over 6 s.
ge "$span" 5.9 || fail "63 arrivals at aggregate_rps 10 took ${span}s"

say "weight 3 for B's key: two floods share the slots 3:1"
assert_match '^[0-9a-f]{12}$' "$kB" "B's key"
stop_sluiced
write_config - <<EOF
destinations:
  "127.0.0.1:$ORIGIN_PORT":
    rps: 20
    concurrency: 100
    aggregate_rps: 20
keys:
  "$kB": { weight: 3 }
EOF
start_sluiced
fire wa 40 "$O/echo/WA" 'Authorization: Bearer A' &
WA=$!
fire wb 40 "$O/echo/WB" 'Authorization: Bearer B' &
WB=$!
# Read while B's queue holds requests: once idle for a second, a queue
# that carries nothing is reclaimed, and A's flood outlasts B's.
wB=
for i in $(seq 40); do
	dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
	wB=$(json "$TMP/queues" '([q["weight"] for q in d["list"]
		if q["key"] == "'"$kB"'" and q["waiting"] > 0] or [""])[0]')
	[ -n "$wB" ] && break
	sleep 0.05
done
wait "$WA" || true
wait "$WB" || true
assert_eq "40 40" "$(fired wa 'sum(r["status"] == 200 for r in rs)') $(fired wb \
	'sum(r["status"] == 200 for r in rs)')" "weighted floods answered 200"
assert_eq 3 "$wB" "/queues weight of B's queue"
# Of the 24 arrivals from B's first on (both queues full all along), 3/4
# are B's: 18.
nb=$("$PYTHON" -c '
import json, sys
seq = [json.loads(l)["target"][:8] for l in open(sys.argv[1])]
seq = [t for t in seq if t in ("/echo/WA", "/echo/WB")]
i = seq.index("/echo/WB")
print(sum(t == "/echo/WB" for t in seq[i:i + 24]))
' "$TMP/origin.requests")
say "B's share of 24 slots with weight 3 against 1: $nb"
if [ "$nb" -lt 15 ] || [ "$nb" -gt 21 ]; then
	fail "B got $nb of 24 slots with weight 3 against A's 1 (18)"
fi

assert_serving "a flood"
say "ok"
