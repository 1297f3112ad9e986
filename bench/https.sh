#!/usr/bin/env bash
# https.sh - HTTPS through CONNECT, against direct HTTPS to the same
# origin, in one run:
#
#   - requests/s through interception, keep-alive (one tunnel per
#     connection, many requests) and with a new connection, CONNECT and
#     handshake for every request, each against direct HTTPS;
#   - interception handshakes/s with a warm certificate cache (one host)
#     and a cold one (a new host name each time: every handshake waits
#     for a certificate to be made);
#   - opaque tunnel (tls.tunnel) throughput with 64 KiB bodies, against
#     direct HTTPS.
#
#     bench/https.sh [SECONDS [CONNECTIONS]]     (default 10 s, 64)
#
# The origin is nginx serving static files over TLS (HTTP/1.1, keep-alive)
# with a certificate from a CA made here; sluiced trusts it through
# tls.upstream_ca_file and has its own CA from `sluicectl ca init`. Limits
# are out of the way (rps 1000000, burst 1000, as in the peers harness).
# Origin and proxy share CPU 0, the load
# generator (bench/tlsload.c, compiled here) has CPU 1, as in
# ../shared/bench/peers. Uses the sluiced and sluicectl of the build tree
# (SLUICED=..., SLUICECTL=... to choose others). Results:
# bench/results/https-<date>.txt.
set -e -u
top=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-10}
CONNS=${2:-64}
SLUICED=${SLUICED:-$top/src/sluiced}
SLUICECTL=${SLUICECTL:-$top/src/sluicectl}
for b in "$SLUICED" "$SLUICECTL"; do
	[ -x "$b" ] || { echo "no $b: build first" >&2; exit 1; }
done
command -v nginx > /dev/null || { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

W=$(mktemp -d /tmp/sluice-https-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.2
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

cc -O2 -o "$W/tlsload" "$top/bench/tlsload.c" -lssl -lcrypto -lpthread

# The origin's PKI: a CA and a certificate for 127.0.0.1 and localhost.
(
	cd "$W"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
		-days 2 -subj '/CN=bench CA' -keyout ca.key -out ca.pem \
		-addext 'basicConstraints=critical,CA:TRUE' 2> /dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
		-subj '/CN=localhost' -keyout o.key -out o.csr 2> /dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > ext
	openssl x509 -req -in o.csr -CA ca.pem -CAkey ca.key -days 2 \
		-set_serial 7 -extfile ext -out o.pem 2> /dev/null
)
mkdir -p "$W/www" "$W/nginx"
head -c 1024 /dev/urandom > "$W/www/1k"
head -c 65536 /dev/urandom > "$W/www/64k"
# nginx's worker runs as another user: the files must be readable.
chmod 755 "$W" "$W/www"
chmod 644 "$W/www/1k" "$W/www/64k"
OPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $W/nginx;
	proxy_temp_path $W/nginx;
	fastcgi_temp_path $W/nginx;
	uwsgi_temp_path $W/nginx;
	scgi_temp_path $W/nginx;
	server {
		listen 127.0.0.1:$OPORT ssl;
		ssl_certificate $W/o.pem;
		ssl_certificate_key $W/o.key;
		ssl_session_cache off;
		ssl_session_tickets off;
		root $W/www;
	}
}
EOF
taskset -c 0 timeout 900 nginx -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" &
pids+=($!)

"$SLUICECTL" ca init -s "$W/state" > /dev/null
cat > "$W/sluice.yaml" <<EOF
max_in_flight: 4096
defaults:                     # out of the way, as in ../shared/bench/peers
  rps: 1000000
  concurrency: 1000
  burst: 1000
  max_queued: 100000
retry:
  max_retries: 0
tls:
  upstream_ca_file: $W/ca.pem
  tunnel: ["localhost:$OPORT"]
  leaf_cache: 1000
EOF
taskset -c 0 timeout 900 "$SLUICED" -c "$W/sluice.yaml" -l 127.0.0.1:0 \
	-a 127.0.0.1:0 -s "$W/state" 2> "$W/sluiced.log" &
pids+=($!)
for _ in $(seq 100); do
	grep -q 'listening proxy=' "$W/sluiced.log" 2>/dev/null && break
	sleep 0.05
done
PPORT=$(sed -n 's/.*listening proxy=[^ ]*:\([0-9]*\) .*/\1/p' "$W/sluiced.log")
[ -n "$PPORT" ] || { echo "sluiced did not start" >&2; cat "$W/sluiced.log" >&2; exit 1; }
curl -fsS --cacert "$W/ca.pem" -o /dev/null "https://127.0.0.1:$OPORT/1k" ||
	{ echo "nginx does not answer" >&2; cat "$W/nginx/error.log" >&2; exit 1; }
curl -fsS -x "http://127.0.0.1:$PPORT" --cacert "$W/state/ca.pem" -o /dev/null \
	"https://127.0.0.1:$OPORT/1k" ||
	{ echo "sluiced does not intercept" >&2; tail "$W/sluiced.log" >&2; exit 1; }

# run NAME ARGS...: one tlsload run on CPU 1; its line in $W/NAME.
run() {
	local name=$1
	shift
	taskset -c 1 "$W/tlsload" -d "$SECS" -A "$W/ca.pem" "$@" > "$W/$name"
	echo "$name: $(cat "$W/$name")" >&2
}
field() {
	sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$W/$1"
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'
}
PROXY=127.0.0.1:$PPORT
SCA=$W/state/ca.pem

run direct-ka -c "$CONNS" -m ka 127.0.0.1 "$OPORT" /1k
run mitm-ka -x "$PROXY" -A "$SCA" -c "$CONNS" -m ka 127.0.0.1 "$OPORT" /1k
run direct-new -c "$CONNS" -m new 127.0.0.1 "$OPORT" /1k
run mitm-new -x "$PROXY" -A "$SCA" -c "$CONNS" -m new 127.0.0.1 "$OPORT" /1k
run shake-warm -x "$PROXY" -A "$SCA" -c "$CONNS" -m shake 127.0.0.1 "$OPORT" /
run shake-cold -x "$PROXY" -A "$SCA" -c "$CONNS" -m shake -H unique \
	127.0.0.1 "$OPORT" /
run direct-64k -c "$CONNS" -m ka -n localhost 127.0.0.1 "$OPORT" /64k
run tunnel-64k -x "$PROXY" -c "$CONNS" -m ka -n localhost -H localhost \
	127.0.0.1 "$OPORT" /64k

mkdir -p "$top/bench/results"
out=$top/bench/results/https-$(date -u +%Y-%m-%d).txt
{
	echo "# bench/https.sh $(date -u '+%Y-%m-%d %H:%M UTC'), ${SECS}s per run, $CONNS connections"
	echo "# $(uname -m), $(nproc) CPUs; origin nginx $(nginx -v 2>&1 | sed 's/.*\///') (TLS, HTTP/1.1); git $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')"
	echo
	echo "| what | direct | through sluiced | ratio | errors |"
	echo "| --- | --: | --: | --: | --: |"
	echo "| 1 KiB, keep-alive, req/s (interception) | $(field direct-ka rps) | $(field mitm-ka rps) | $(ratio "$(field mitm-ka rps)" "$(field direct-ka rps)") | $(field mitm-ka errors) |"
	echo "| 1 KiB, new connection + handshake each, req/s (interception) | $(field direct-new rps) | $(field mitm-new rps) | $(ratio "$(field mitm-new rps)" "$(field direct-new rps)") | $(field mitm-new errors) |"
	echo "| 64 KiB, keep-alive, MB/s (opaque tunnel) | $(field direct-64k mbps) | $(field tunnel-64k mbps) | $(ratio "$(field tunnel-64k mbps)" "$(field direct-64k mbps)") | $(field tunnel-64k errors) |"
	echo
	echo "| interception handshakes/s | handshakes/s | errors |"
	echo "| --- | --: | --: |"
	echo "| warm certificate cache (one host) | $(field shake-warm hps) | $(field shake-warm errors) |"
	echo "| cold (a new host each time: a certificate made for each) | $(field shake-cold hps) | $(field shake-cold errors) |"
	echo
	echo "raw:"
	for f in direct-ka mitm-ka direct-new mitm-new shake-warm shake-cold direct-64k tunnel-64k; do
		echo "  $f: $(cat "$W/$f")"
	done
} | tee "$out"
echo "saved: $out" >&2
