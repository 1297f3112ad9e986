#!/usr/bin/env bash
# 82-metrics: GET /metrics is Prometheus text (SPEC sections 9 and 11),
# parsed here by the Prometheus client library's own parser (Debian's
# python3-prometheus-client), not grepped: every family has HELP and TYPE
# and a sluice_ name, and the counters match the traffic sent. Known
# traffic through the proxy: 5 requests answered 200, one 404, one
# answered 503 then 200 (one retry), two to a closed port (connection
# refused, no retry), a webhook job delivered to a receiver. Then:
# requests_total by destination and class, upstream_attempts_total,
# retries_total, upstream_errors_total{kind="connect"}, the queue wait
# histogram (cumulative, +Inf = count = attempts), gauges, jobs accepted
# and ended, deliveries, reloads; metrics.max_destinations: 2 puts a
# third destination under "other"; metrics.per_key shows queues by key
# hash (never the credential) and says when max_keys cut them; with
# admin_token_file /metrics wants the token. The credential sent is in
# no byte of the output.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

"$PYTHON" -c 'import prometheus_client.parser' 2>/dev/null ||
	error "python3-prometheus-client is needed (scripts/test installs it)"

SECRET=metrics-secret-credential-7d1f
start_origin other
OTHER_PORT=$ORIGIN_PORT
start_origin
start_receiver
CLOSED=$(closed_port)
write_config - <<EOF
retry:
  max_retries: 2
  backoff_base: 10ms
  backoff_cap: 20ms
destinations:
  "127.0.0.1:$CLOSED":
    rps: 1000
metrics:
  max_destinations: 2
  per_key: true
  max_keys: 1
EOF
start_sluiced
O=http://127.0.0.1:$ORIGIN_PORT
AUTH="Authorization: Bearer $SECRET"

# scrape NAME [CURL ARGS...]: GET /metrics to $TMP/NAME.prom, parsed into
# $TMP/NAME.json: {"families": {name: {"type", "help"}}, "samples":
# [[name, labels, value], ...]}; the parse fails the test on bad text.
scrape() {
	local name=$1
	shift
	dcurl -o "$TMP/$name.prom" -D "$TMP/$name.headers" "$@" \
		"http://127.0.0.1:$ADMIN_PORT/metrics"
	"$PYTHON" - "$TMP/$name.prom" "$TMP/$name.json" <<'EOF' ||
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams, samples = {}, []
for f in text_string_to_metric_families(text):
    fams[f.name] = {"type": f.type, "help": f.documentation}
    for s in f.samples:
        samples.append([s.name, s.labels, s.value])
# Every family announced with both HELP and TYPE, in the text itself.
for f in fams:
    assert "# HELP %s " % f in text or "# HELP %s_total " % f in text, f
    assert "# TYPE %s " % f in text or "# TYPE %s_total " % f in text, f
json.dump({"families": fams, "samples": samples}, open(sys.argv[2], "w"))
EOF
		fail "/metrics ($name) is not valid Prometheus text: $(head -c 600 "$TMP/$name.prom")"
}

# m NAME EXPR: EXPR over the parsed scrape NAME, with v(name, **labels)
# the sum of matching samples (cls= for the label "class"), fam(name) the
# family's type and labels(name, key) the values a label takes.
m() {
	"$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
def v(name, **labels):
    # cls= stands for the label "class", a Python keyword.
    labels = {("class" if k == "cls" else k): w for k, w in labels.items()}
    return sum(s[2] for s in d["samples"] if s[0] == name and
               all(s[1].get(k) == w for k, w in labels.items()))
def fam(name):
    return d["families"].get(name, {}).get("type")
def labels(name, key):
    return sorted({s[1].get(key) for s in d["samples"] if s[0] == name})
r = eval(sys.argv[2])
print(r if isinstance(r, str) else json.dumps(r))
' "$TMP/$1.json" "$2"
}

say "known traffic"
for i in 1 2 3 4 5; do
	assert_eq 200 "$(http_status -H "$AUTH" "$O/echo/ok$i")" "200 #$i"
done
assert_eq 404 "$(http_status -H "$AUTH" "$O/status/404")" "the 404"
assert_eq 200 "$(http_status -H "$AUTH" "$O/seq/r?codes=503,200")" \
	"503 then 200"
for i in 1 2; do
	s=$(http_status -H "$AUTH" -H 'X-EZTHROTTLE-MAX-RETRIES: 0' \
		"http://127.0.0.1:$CLOSED/x$i")
	assert_eq 502 "$s" "closed port #$i"
done
assert_eq 200 "$(http_status "http://127.0.0.1:$OTHER_PORT/echo/third")" \
	"a third destination"
s=$(http_status -H "$AUTH" \
	-H "X-EZTHROTTLE-WEBHOOK: http://127.0.0.1:$RECEIVER_PORT/hook" \
	"$O/echo/job")
assert_eq 202 "$s" "a webhook job"
wait_for 'len(ds) >= 1' 10 || fail "the job's result was not delivered"
for _ in $(seq 50); do
	scrape a
	[ "$(m a 'v("sluice_jobs_ended_total", result="succeeded")')" != 0.0 ] &&
		[ "$(m a 'v("sluice_webhook_deliveries_total", outcome="delivered")')" != 0.0 ] &&
		break
	sleep 0.1
done

say "the scrape parses; its names and types"
assert_match '^text/plain; version=0\.0\.4' \
	"$(sed -n 's/^Content-Type: //Ip' "$TMP/a.headers" | tr -d '\r')" \
	"Content-Type"
assert_eq '[]' "$(m a '[f for f in d["families"] if not f.startswith("sluice_")]')" \
	"families without the sluice_ prefix"
assert_eq counter "$(m a 'fam("sluice_requests")')" "requests_total type"
assert_eq histogram "$(m a 'fam("sluice_queue_wait_seconds")')" \
	"queue_wait_seconds type"
assert_eq gauge "$(m a 'fam("sluice_waiting_requests")')" "waiting type"
assert_eq 1.0 "$(m a 'v("sluice_build_info")')" "build_info"
assert_no_grep "$SECRET" "$TMP/a.prom" "the credential in /metrics"

say "counters match the traffic"
D="http://127.0.0.1:$ORIGIN_PORT"
C="http://127.0.0.1:$CLOSED"
# 5 + the retried one + the job: 7 ended 2xx; the 404.
assert_eq 7.0 "$(m a 'v("sluice_requests_total", destination="'"$D"'", cls="2xx")')" \
	"2xx of the origin"
assert_eq 1.0 "$(m a 'v("sluice_requests_total", destination="'"$D"'", cls="4xx")')" \
	"4xx of the origin"
assert_eq 9.0 "$(m a 'v("sluice_upstream_attempts_total", destination="'"$D"'")')" \
	"attempts to the origin (8 requests, one retried)"
assert_eq 1.0 "$(m a 'v("sluice_retries_total", destination="'"$D"'")')" \
	"retries to the origin"
assert_eq 2.0 "$(m a 'v("sluice_requests_total", destination="'"$C"'", cls="5xx")')" \
	"5xx of the closed port"
assert_eq 2.0 "$(m a 'v("sluice_upstream_errors_total", destination="'"$C"'", kind="connect")')" \
	"connection errors of the closed port"
assert_eq 1.0 "$(m a 'v("sluice_requests_total", destination="other", cls="2xx")')" \
	"the third destination is other (max_destinations: 2)"
assert_eq true "$(m a 'labels("sluice_requests_total", "destination") == sorted(["'"$C"'", "'"$D"'", "other"])')" \
	"destination labels: $(m a 'labels("sluice_requests_total", "destination")')"
attempts=$(m a 'v("sluice_upstream_attempts_total")')
assert_eq "$attempts" "$(m a 'v("sluice_queue_wait_seconds_count")')" \
	"queue wait observations = attempts"
assert_eq "$attempts" "$(m a 'v("sluice_queue_wait_seconds_bucket", le="+Inf")')" \
	"+Inf bucket = count"
assert_eq true "$(m a '[s[2] for s in d["samples"] if s[0] == "sluice_queue_wait_seconds_bucket"] == sorted(s[2] for s in d["samples"] if s[0] == "sluice_queue_wait_seconds_bucket")')" \
	"buckets are cumulative"
assert_eq 1.0 "$(m a 'v("sluice_jobs_accepted_total")')" "jobs accepted"
assert_eq 1.0 "$(m a 'v("sluice_jobs_ended_total", result="succeeded")')" \
	"jobs ended"
assert_eq 1.0 "$(m a 'v("sluice_webhook_deliveries_total", outcome="delivered")')" \
	"deliveries"
assert_eq 0.0 "$(m a 'v("sluice_waiting_requests")')" "nothing waiting"
assert_eq 0.0 "$(m a 'v("sluice_reloads_total")')" "no reload yet"

say "per key: the hash /queues shows, cut at max_keys"
dcurl -o "$TMP/queues" "http://127.0.0.1:$ADMIN_PORT/queues"
key=$(json "$TMP/queues" '[q["key"] for q in d["list"] if q["key"]][0]')
assert_match '^[0-9a-f]{12}$' "$key" "a key hash in /queues"
keys=$(m a 'labels("sluice_key_waiting", "key")')
assert_eq "[\"$key\"]" "$keys" "key labels (max_keys: 1)"
assert_eq 1.0 "$(m a 'v("sluice_key_series_cut")')" \
	"more keys than max_keys"

say "a reload counts"
assert_eq 200 "$(dcurl -o /dev/null -w '%{http_code}' -X POST \
	"http://127.0.0.1:$ADMIN_PORT/reload")" "POST /reload"
scrape b
assert_eq 1.0 "$(m b 'v("sluice_reloads_total", result="ok")')" "reloads ok"

say "admin_token_file: /metrics wants the token"
printf 'metrics-token\n' > "$TMP/token"
printf 'admin_token_file: %s\n' "$TMP/token" >> "$TMP/sluice.yaml"
stop_sluiced
start_sluiced
assert_eq 401 "$(dcurl -o /dev/null -w '%{http_code}' \
	"http://127.0.0.1:$ADMIN_PORT/metrics")" "/metrics without the token"
scrape c -H 'Authorization: Bearer metrics-token'
assert_eq 1.0 "$(m c 'v("sluice_build_info")')" "/metrics with the token"

assert_serving "metrics"
say "ok"
