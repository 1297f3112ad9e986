#!/bin/bash
# Side-by-side benchmark of forward HTTP proxies on this machine: direct
# access, tinyproxy, squid, nginx (plain and with an upstream keep-alive
# pool), haproxy and sluiced, in one run, against one nginx origin.
#
#   bench/peers/run.sh [full|quick]      (default: full)
#
# Starts the origin, then each peer in turn (a forward proxy on 127.0.0.1,
# its own configuration in a temporary directory), drives it with wrk in
# four modes (ka-1k, close-1k, ka-64k, lat-1k), and prints a Markdown
# report: a summary (each peer's ratio to direct per mode, sluiced / best
# peer, the latency added at one connection, the memory per idle client
# connection) and the full table. The report and the raw per-round TSV go
# to $OUTDIR/$NAME.md and $OUTDIR/$NAME.tsv (and $NAME-idle.tsv). Every
# server is a child of this script, runs under timeout(1), is bound to
# 127.0.0.1 and is stopped by the PID recorded when it was started.
# scripts/bench installs the peers, builds sluiced and runs this.
#
# Environment (all optional):
#   SLUICED=/path/to/sluiced  add sluiced as a peer (skipped when unset/absent)
#   PEERS="direct tinyproxy squid nginx nginx-pool haproxy sluiced"
#                             peers to run, in this order (direct is always run)
#   REPEAT=1                  rounds; with N>1 every figure is the median over
#                             the rounds of that figure, ratios included
#   CONNS=64                  connections for the throughput modes
#   DUR=<s>                   override every point's duration
#   PIN=1                     0: no taskset at all
#   THREADS=1                 threads of the proxies that have a setting:
#                             nginx worker_processes, haproxy nbthread,
#                             sluiced workers (squid, tinyproxy and the
#                             origin keep one); with PIN=0, THREADS=2
#                             gives each proxy both cores
#   CPU_SERVERS=0 CPU_LOAD=1  the cores for origin+proxy and for wrk
#   IDLE_CONNS=1000           idle keep-alive client connections held open
#                             to measure each peer's memory per connection
#                             (a fresh instance of each, after the rounds);
#                             0: skip
#   PERF=0                    1: one more ka-1k run through sluiced under
#                             perf after its last round (not in the table):
#                             syscalls per request and the CPU profile
#   OUTDIR=bench/out          where the files go (git-ignored)
#   NAME=results-<UTC stamp>  base name of the files
#   NOTE=<text>               a paragraph put under the report's title
#   KEEP_RUNDIR=0             1: keep the temporary directory (configs, logs)
set -euo pipefail

PROFILE=${1:-full}
HERE=$(cd "$(dirname "$0")" && pwd)
LUA=$HERE/../proxy.lua

case "$PROFILE" in
    full)  T_KA=10; T_CLOSE=10; T_BIG=5; T_LAT=5; T_WARM=1 ;;
    quick) T_KA=3;  T_CLOSE=3;  T_BIG=3; T_LAT=3; T_WARM=1 ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [full|quick]" >&2; exit 1 ;;
esac
if [ -n "${DUR:-}" ]; then T_KA=$DUR; T_CLOSE=$DUR; T_BIG=$DUR; T_LAT=$DUR; fi

CONNS=${CONNS:-64}
REPEAT=${REPEAT:-1}
PIN=${PIN:-1}
THREADS=${THREADS:-1}
CPU_SERVERS=${CPU_SERVERS:-0}
CPU_LOAD=${CPU_LOAD:-1}
OUTDIR=${OUTDIR:-$HERE/../out}
KEEP_RUNDIR=${KEEP_RUNDIR:-0}
IDLE_CONNS=${IDLE_CONNS:-1000}
PERF=${PERF:-0}
NOTE=${NOTE:-}
for v in "$CONNS" "$REPEAT" "$IDLE_CONNS" "${DUR:-1}" "$THREADS"; do
    case $v in
        '' | *[!0-9]*) echo "run.sh: '$v' is not a number" >&2; exit 1 ;;
    esac
done
[ "$REPEAT" -ge 1 ] || { echo "run.sh: REPEAT must be >= 1" >&2; exit 1; }

# No proxy variable may reach wrk, curl or the peers' upstream clients.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
    no_proxy NO_PROXY ftp_proxy FTP_PROXY
DEFAULT_PEERS="direct tinyproxy squid nginx nginx-pool haproxy sluiced"
PEERS=${PEERS:-$DEFAULT_PEERS}
# mode name, path, Connection: close?, connections, duration
MODES="ka-1k close-1k ka-64k lat-1k"

for tool in wrk nginx curl python3 ss timeout; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool missing (run setup.sh)" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then PIN=0; fi

pin() { # pin CPU cmd...
    local cpu=$1; shift
    if [ "$PIN" = 1 ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

log() { echo "# $(date -u +%T) $*" >&2; }

# ---------------------------------------------------------------- processes
RUNDIR=$(mktemp -d /tmp/peersbench.XXXXXX)
chmod 755 "$RUNDIR"          # workers run as nobody/proxy and must traverse it
PIDS=()                      # every server process we started
PID_NAMES=()

descendants() { # PID -> its descendants' PIDs (children first)
    local p=$1 c
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
        descendants "$c"
        echo "$c"
    done
}

stop_pid() { # PID NAME: TERM, then KILL after 5 s; then any leftover child
    local pid=$1 name=$2 kids i
    kill -0 "$pid" 2>/dev/null || return 0
    kids=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name ($pid) ignored SIGTERM; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for i in $kids; do
        if kill -0 "$i" 2>/dev/null && [ "$(ps -o stat= -p "$i" 2>/dev/null | cut -c1)" != Z ]; then
            log "$name: child $i still alive after the parent stopped; SIGKILL"
            kill -KILL "$i" 2>/dev/null || true
        fi
    done
}

stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        [ -n "${PIDS[$i]}" ] && stop_pid "${PIDS[$i]}" "${PID_NAMES[$i]}"
        PIDS[i]=""
    done
}

cleanup() {
    stop_all
    if [ "$KEEP_RUNDIR" = 1 ]; then log "kept $RUNDIR"; else rm -rf "$RUNDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Seconds a server may live (timeout(1)): set before each start from the
# expected duration, so that a server outlives this script by little if
# the script is killed hard.
SRV_LIMIT=600

start_bg() { # NAME LOGFILE cmd... (pinned to the servers' core); sets LAST_PID
    local name=$1 logf=$2; shift 2
    # a simple command (not a shell function) so that $! is timeout(1),
    # whose child is the server (taskset execs it); timeout passes SIGTERM
    # on to the server and to its process group (nginx's worker)
    if [ "$PIN" = 1 ]; then set -- taskset -c "$CPU_SERVERS" "$@"; fi
    timeout -k 5 "$SRV_LIMIT" "$@" >"$logf" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    PID_NAMES+=("$name")
}

server_pid() { # PID of timeout(1) -> the server it runs
    local c
    c=$(ps -o pid= --ppid "$1" 2>/dev/null | head -1 | tr -d ' ')
    echo "${c:-$1}"
}

stop_last() { # stop the most recently started server
    local i=$((${#PIDS[@]} - 1))
    stop_pid "${PIDS[$i]}" "${PID_NAMES[$i]}"
    PIDS[i]=""
}

USED_PORTS=" "
free_port() { # a free port in 20000-32767: below the ephemeral range
    local p listening
    listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ')
    while :; do
        p=$((20000 + RANDOM % 12768))
        case " $listening $USED_PORTS " in *" $p "*) continue ;; esac
        USED_PORTS="$USED_PORTS$p "
        echo "$p"
        return
    done
}

wait_port() { # PORT PID SECONDS
    local port=$1 pid=$2 n=$(( $3 * 10 ))
    while [ $n -gt 0 ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1; n=$((n - 1))
    done
    return 1
}

# ---------------------------------------------------------------- origin
ORIGIN_PORT=$(free_port)
ORIGIN=127.0.0.1:$ORIGIN_PORT

nginx_common() { # DIR [WORKERS]: the lines every nginx config here shares
    local d=$1
    mkdir -p "$d/tmp"
    cat <<EOF
worker_processes ${2:-1};
worker_rlimit_nofile 16384;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
EOF
}

nginx_http_common() { # DIR
    local d=$1
    cat <<EOF
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    tcp_nodelay on;
EOF
}

start_origin() {
    local d=$RUNDIR/origin
    mkdir -p "$d/www"
    head -c 1024 /dev/zero | tr '\0' 'a' > "$d/www/1k"
    head -c 65536 /dev/zero | tr '\0' 'b' > "$d/www/64k"
    chmod 755 "$d" "$d/www"; chmod 644 "$d/www/"*
    {
        nginx_common "$d"
        echo "http {"
        nginx_http_common "$d"
        cat <<EOF
    sendfile on;
    default_type application/octet-stream;
    server {
        listen $ORIGIN backlog=4096;
        root $d/www;
        location / { }
    }
}
EOF
    } > "$d/nginx.conf"
    start_bg origin "$d/stderr.log" nginx -c "$d/nginx.conf" -p "$d" -g 'daemon off;'
    wait_port "$ORIGIN_PORT" "$LAST_PID" 10 || { cat "$d/stderr.log" "$d/error.log" >&2; echo "origin failed" >&2; exit 1; }
}

# ---------------------------------------------------------------- peers
# Each start_<peer> starts the peer and sets PEER_PORT, or returns 1.

start_tinyproxy() {
    command -v tinyproxy >/dev/null || return 1
    local d=$RUNDIR/tinyproxy; mkdir -p "$d"
    PEER_PORT=$(free_port)
    cat > "$d/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port $PEER_PORT
Listen 127.0.0.1
Timeout 600
MaxClients 1024
LogLevel Critical
Allow 127.0.0.1
DisableViaHeader Yes
EOF
    start_bg tinyproxy "$d/stderr.log" tinyproxy -d -c "$d/tinyproxy.conf"
    wait_port "$PEER_PORT" "$LAST_PID" 10
}

start_squid() {
    command -v squid >/dev/null || return 1
    local d=$RUNDIR/squid; mkdir -p "$d"
    PEER_PORT=$(free_port)
    cat > "$d/squid.conf" <<EOF
http_port 127.0.0.1:$PEER_PORT
http_access allow localhost
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log $d/cache.log
pid_filename $d/squid.pid
coredump_dir $d
workers 1
max_filedescriptors 16384
pinger_enable off
dns_nameservers 127.0.0.1
udp_incoming_address 127.0.0.1
shutdown_lifetime 0 seconds
visible_hostname peersbench
logfile_rotate 0
EOF
    chown proxy "$d" 2>/dev/null || chmod 777 "$d"
    start_bg squid "$d/stderr.log" squid -N -f "$d/squid.conf"
    wait_port "$PEER_PORT" "$LAST_PID" 20
}

start_nginx_fp() { # POOL(0|1)
    local pool=$1 name=nginx
    [ "$pool" = 1 ] && name=nginx-pool
    local d=$RUNDIR/$name; mkdir -p "$d"
    PEER_PORT=$(free_port)
    {
        nginx_common "$d" "$THREADS"
        echo "http {"
        nginx_http_common "$d"
        if [ "$pool" = 0 ]; then
            # the textbook forward proxy: one new upstream connection per
            # request (HTTP/1.0, Connection: close to the origin)
            cat <<EOF
    server {
        listen 127.0.0.1:$PEER_PORT backlog=4096;
        location / {
            proxy_pass http://\$http_host\$request_uri;
        }
    }
}
EOF
        else
            # the same, plus a keep-alive pool for the origin: nginx looks a
            # proxy_pass host that is a name up among its upstream blocks, so
            # the origin's host:port is mapped to a named upstream.
            cat <<EOF
    upstream origin_pool {
        server $ORIGIN;
        keepalive 128;
        keepalive_requests 1000000;
    }
    map \$http_host \$fp_upstream {
        default \$http_host;
        "$ORIGIN" origin_pool;
    }
    server {
        listen 127.0.0.1:$PEER_PORT backlog=4096;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_pass http://\$fp_upstream\$request_uri;
        }
    }
}
EOF
        fi
    } > "$d/nginx.conf"
    start_bg "$name" "$d/stderr.log" nginx -c "$d/nginx.conf" -p "$d" -g 'daemon off;'
    wait_port "$PEER_PORT" "$LAST_PID" 10
}
start_nginx()      { start_nginx_fp 0; }
start_nginx_pool() { start_nginx_fp 1; }

start_haproxy() {
    command -v haproxy >/dev/null || return 1
    local d=$RUNDIR/haproxy; mkdir -p "$d"
    PEER_PORT=$(free_port)
    cat > "$d/haproxy.cfg" <<EOF
global
    nbthread $THREADS
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fp
    bind 127.0.0.1:$PEER_PORT
    default_backend forward

# forward proxy for IP-literal destinations (a name would need
# "http-request do-resolve" and a resolvers section)
backend forward
    http-request set-dst url_ip
    http-request set-dst-port url_port
    http-request set-uri %[pathq]
    server clear 0.0.0.0:0
EOF
    start_bg haproxy "$d/stderr.log" haproxy -db -f "$d/haproxy.cfg"
    wait_port "$PEER_PORT" "$LAST_PID" 10
}

start_sluiced() {
    [ -n "${SLUICED:-}" ] && [ -x "$SLUICED" ] || return 1
    local d=$RUNDIR/sluiced; mkdir -p "$d/state"
    PEER_PORT=$(free_port)
    local admin
    admin=$(free_port)
    # limits far above what the box can do, so that throttling never limits
    cat > "$d/sluice.yaml" <<EOF
max_in_flight: 10000
max_queued: 100000
workers: $THREADS
log_level: warn
access_log: false
defaults:
  rps: 1000000
  concurrency: 1000
  burst: 1000
EOF
    start_bg sluiced "$d/stderr.log" "$SLUICED" -c "$d/sluice.yaml" \
        -l "127.0.0.1:$PEER_PORT" -a "127.0.0.1:$admin" -s "$d/state"
    wait_port "$PEER_PORT" "$LAST_PID" 10
}

package_of() { # PEER -> the Debian package (and version) of its binary
    local bin pkg
    case "$1" in
        direct|nginx|nginx-pool) bin=nginx ;; sluiced) echo "-"; return ;;
        *) bin=$1 ;;
    esac
    bin=$(readlink -f "$(command -v "$bin")") || { echo "-"; return; }
    pkg=$(dpkg -S "$bin" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$pkg" ] && dpkg-query -W -f '${Package} ${Version}' "$pkg" 2>/dev/null || echo "-"
}

version_of() { # PEER -> one line
    case "$1" in
        direct) echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (origin only)" ;;
        tinyproxy) tinyproxy -v 2>&1 | head -1 ;;
        squid) squid -v 2>&1 | head -1 ;;
        nginx|nginx-pool) nginx -v 2>&1 | head -1 ;;
        haproxy) haproxy -v 2>&1 | head -1 ;;
        sluiced) "$SLUICED" --version 2>&1 | head -1 ;;
    esac
}

# ---------------------------------------------------------------- probes
probe() { # PEER PORT: the 1k body comes back through the proxy, keep-alive?
    local peer=$1 port=$2 size ka
    local url=http://$ORIGIN/1k px=()
    [ "$peer" != direct ] && px=(-x "http://127.0.0.1:$port")
    size=$(curl -s -m 5 -o /dev/null -w '%{http_code} %{size_download}' "${px[@]}" "$url" || true)
    [ "$size" = "200 1024" ] || { log "$peer: probe got '$size'"; return 1; }
    # two requests on one curl: does the client connection stay open?
    if curl -sv -m 5 -o /dev/null -o /dev/null "${px[@]}" "$url" "$url" 2>&1 \
            | grep -qi 're-using existing connection'; then
        ka=yes
    else
        ka=no
    fi
    echo "$ka"
}

# ---------------------------------------------------------------- load
cpu_snap() { # "cpuN total idle" for every core
    awk '/^cpu[0-9]/ { t = 0; for (i = 2; i <= NF; i++) t += $i; print $1, t, $5 + $6 }' /proc/stat
}
cpu_busy() { # BEFORE AFTER CPU -> busy % of that core (all cores when PIN=0)
    awk -v want="$3" -v pin="$PIN" '
        FNR == NR { t0[$1] = $2; i0[$1] = $3; next }
        (pin != 1 || $1 == "cpu" want) { dt += $2 - t0[$1]; di += $3 - i0[$1] }
        END { printf "%.0f", (dt > 0) ? 100 * (dt - di) / dt : 0 }' <(echo "$1") <(echo "$2")
}

# run_wrk PEER PORT MODE SECONDS ->
#   "reqs p50_us p99_us errors err_detail rps srv_cpu% load_cpu%"
# err_detail is connect/read/write/status/timeout as wrk counts them.
run_wrk() {
    local peer=$1 port=$2 mode=$3 secs=$4
    local path conns close=0 url target line before after
    case "$mode" in
        ka-1k)    path=/1k;  conns=$CONNS ;;
        close-1k) path=/1k;  conns=$CONNS; close=1 ;;
        ka-64k)   path=/64k; conns=$CONNS ;;
        lat-1k)   path=/1k;  conns=1 ;;
    esac
    if [ "$peer" = direct ]; then url=http://$ORIGIN$path target=""
    else url=http://127.0.0.1:$port/ target=http://$ORIGIN$path; fi
    before=$(cpu_snap)
    line=$(TARGET=$target CLOSE=$close \
        pin "$CPU_LOAD" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$LUA" \
        "$url" 2>&1 | grep '^bench: ' || true)
    after=$(cpu_snap)
    if [ -z "$line" ]; then
        log "$peer $mode: no result from wrk"
        echo "0 0 0 1 0/0/0/0/0 0 0 0"; return
    fi
    # bench: requests=N duration_us=D rps=R p50_us=X p90_us=X p99_us=X
    #        max_us=X mean_us=X connect=N read=N write=N status=N timeout=N
    echo "$line" | awk -v s="$(cpu_busy "$before" "$after" "$CPU_SERVERS")" \
                       -v l="$(cpu_busy "$before" "$after" "$CPU_LOAD")" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        err = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
        rps = (v["duration_us"] > 0) ? v["requests"] / (v["duration_us"] / 1e6) : 0
        printf "%d %d %d %d %d/%d/%d/%d/%d %.1f %s %s\n", v["requests"], v["p50_us"],
            v["p99_us"], err, v["connect"], v["read"], v["write"], v["status"],
            v["timeout"], rps, s, l }'
}

# ---------------------------------------------------------------- perf
# profile PORT PID: one more ka-1k run through sluiced (PID) on PORT, not
# counted, with perf recording samples and counting syscalls; leaves
# $RUNDIR/perf.data, perf-stat.txt and perf-run.txt ("reqs ... rps").
profile() {
    local port=$1 pid=$2 sc=syscalls:sys_enter prec pstat
    if ! command -v perf >/dev/null 2>&1; then
        log "PERF=1 but no perf: no profile"
        return 0
    fi
    log "sluiced: ka-1k ${T_KA}s under perf (not in the table)"
    perf record -F 999 -g -o "$RUNDIR/perf.data" -p "$pid" \
        -- sleep "$T_KA" >"$RUNDIR/perf-record.err" 2>&1 &
    prec=$!
    perf stat -x, -o "$RUNDIR/perf-stat.txt" \
        -e raw_syscalls:sys_enter,context-switches \
        -e "$sc"_epoll_ctl,"$sc"_epoll_wait,"$sc"_poll \
        -e "$sc"_recvfrom,"$sc"_read,"$sc"_sendto,"$sc"_sendmsg \
        -e "$sc"_write,"$sc"_writev,"$sc"_futex,"$sc"_madvise \
        -p "$pid" -- sleep "$T_KA" >"$RUNDIR/perf-stat.err" 2>&1 &
    pstat=$!
    run_wrk sluiced "$port" ka-1k "$T_KA" >"$RUNDIR/perf-run.txt"
    wait "$prec" 2>/dev/null || true
    wait "$pstat" 2>/dev/null || true
}

# ---------------------------------------------------------------- idle
# idle_mem PEER: a fresh instance of PEER; idle.py reads its resident
# memory, opens IDLE_CONNS keep-alive client connections with one request
# each, reads it again; one row in $IDLE.
idle_mem() {
    local peer=$1 fn=start_${1//-/_} npids=${#PIDS[@]} line srv
    local before after ok kept
    SRV_LIMIT=$((120 + IDLE_CONNS / 10))
    if ! $fn; then
        log "$peer: failed to start for the idle connections; skipped"
        [ "${#PIDS[@]}" -gt "$npids" ] && stop_last
        return 0
    fi
    if ! probe "$peer" "$PEER_PORT" >/dev/null; then
        log "$peer: probe failed before the idle connections; skipped"
        stop_last
        return 0
    fi
    srv=$(server_pid "$LAST_PID")
    line=$(pin "$CPU_LOAD" python3 "$HERE/idle.py" "$PEER_PORT" "$ORIGIN" \
        "$IDLE_CONNS" "$srv" 2>"$RUNDIR/idle-$peer.err") || line=""
    stop_last
    if [ -z "$line" ]; then
        log "$peer: idle connections failed: $(cat "$RUNDIR/idle-$peer.err")"
        return 0
    fi
    read -r before after ok kept <<<"$line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$IDLE_CONNS" "$before" \
        "$after" "$ok" "$kept" >>"$IDLE"
    log "$peer: $IDLE_CONNS idle connections: VmRSS $before -> $after KiB, $ok answered 200, $kept still open"
}

# ---------------------------------------------------------------- main
mkdir -p "$OUTDIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
START_EPOCH=$(date +%s)
NAME=${NAME:-results-$STAMP}
RAW=$OUTDIR/$NAME.tsv
IDLE=$OUTDIR/$NAME-idle.tsv
MD=$OUTDIR/$NAME.md
TSV=$RUNDIR/medians.tsv
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'round\tpeer\tmode\treqs\tp50_us\tp99_us\terrors\trps\terr_c/r/w/s/t\tsrv_cpu_pct\tload_cpu_pct\n' > "$RAW"
printf 'peer\tconnections\trss_before_kib\trss_after_kib\tanswered_200\tstill_open\n' > "$IDLE"

# peers to run: direct first, skip what is absent
RUN_PEERS="direct"
SKIPPED=""
for p in $PEERS; do
    case "$p" in
        direct) ;;
        sluiced)
            if [ -n "${SLUICED:-}" ] && [ -x "$SLUICED" ]; then RUN_PEERS="$RUN_PEERS sluiced"
            else SKIPPED="$SKIPPED sluiced(SLUICED unset or not executable)"; fi ;;
        nginx|nginx-pool) RUN_PEERS="$RUN_PEERS $p" ;;
        tinyproxy|squid|haproxy)
            if command -v "$p" >/dev/null; then RUN_PEERS="$RUN_PEERS $p"
            else SKIPPED="$SKIPPED $p(not installed)"; fi ;;
        *) echo "run.sh: unknown peer $p" >&2; exit 1 ;;
    esac
done

per_peer=$((T_WARM + T_KA + T_CLOSE + T_BIG + T_LAT + 4))
npeers=$(echo "$RUN_PEERS" | wc -w)
idle_secs=0
[ "$IDLE_CONNS" -gt 0 ] && idle_secs=$(((npeers - 1) * (3 + IDLE_CONNS / 500)))
expected=$((per_peer * npeers * REPEAT + idle_secs))
log "profile=$PROFILE peers=[$RUN_PEERS] rounds=$REPEAT conns=$CONNS pin=$PIN threads=$THREADS (servers cpu $CPU_SERVERS, wrk cpu $CPU_LOAD) idle=$IDLE_CONNS perf=$PERF"
log "expected duration ~$expected s; rundir $RUNDIR"

SRV_LIMIT=$((2 * expected + 300))
start_origin
log "origin nginx on $ORIGIN (pid $(server_pid "$LAST_PID"))"

declare -A KA VERSION
FAILED=""
for round in $(seq "$REPEAT"); do
    for peer in $RUN_PEERS; do
        port=$ORIGIN_PORT
        if [ "$peer" != direct ]; then
            fn=start_${peer//-/_}
            npids=${#PIDS[@]}
            SRV_LIMIT=$((2 * per_peer + 60))
            [ "$PERF" = 1 ] && SRV_LIMIT=$((SRV_LIMIT + 2 * T_KA))
            if ! $fn; then
                log "$peer: failed to start; skipped"
                [ "${#PIDS[@]}" -gt "$npids" ] && { tail -5 "$RUNDIR/$peer/stderr.log" >&2 || true; stop_last; }
                FAILED="$FAILED $peer"; continue
            fi
            port=$PEER_PORT
        fi
        if ! ka=$(probe "$peer" "$port"); then
            log "$peer: probe failed; skipped"
            [ "$peer" != direct ] && stop_last
            FAILED="$FAILED $peer"; continue
        fi
        KA[$peer]=$ka
        VERSION[$peer]=$(version_of "$peer")
        run_wrk "$peer" "$port" ka-1k "$T_WARM" >/dev/null     # warm-up
        for mode in $MODES; do
            case "$mode" in
                ka-1k) t=$T_KA ;; close-1k) t=$T_CLOSE ;; ka-64k) t=$T_BIG ;; lat-1k) t=$T_LAT ;;
            esac
            read -r reqs p50 p99 err edetail rps scpu lcpu < <(run_wrk "$peer" "$port" "$mode" "$t")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$peer" "$mode" \
                "$reqs" "$p50" "$p99" "$err" "$rps" "$edetail" "$scpu" "$lcpu" >> "$RAW"
            log "round $round $peer $mode: $rps req/s p50 ${p50}us p99 ${p99}us errors $edetail (c/r/w/s/t) cpu srv ${scpu}% wrk ${lcpu}%"
            sleep 0.5
        done
        if [ "$peer" = sluiced ] && [ "$PERF" = 1 ] && [ "$round" = "$REPEAT" ]; then
            profile "$port" "$(server_pid "$LAST_PID")"
        fi
        if [ "$peer" != direct ]; then
            kill -0 "$(server_pid "$LAST_PID")" 2>/dev/null ||
                log "$peer: died during its points: $(tail -3 "$RUNDIR/$peer/stderr.log")"
            stop_last
        fi
    done
done

if [ "$IDLE_CONNS" -gt 0 ]; then
    for peer in $RUN_PEERS; do
        [ "$peer" = direct ] && continue
        case " $FAILED " in *" $peer "*) continue ;; esac
        idle_mem "$peer"
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# a peer that failed in several rounds is listed once
FAILED=$(echo "$FAILED" | tr ' ' '\n' | sed '/^$/d' | sort -u | sed 's/^/ /' | tr -d '\n')

# ---------------------------------------------------------------- report
# Per round and mode: ratio to direct = rps / rps(direct); ratio to best =
# rps / max rps among the proxies (direct excluded); ratio to best other =
# rps / max rps among the other proxies; added latency = pNN - pNN(direct).
# Then every figure is the median over the rounds.
awk -F'\t' -v order="$RUN_PEERS" -v modes="$MODES" '
NR == 1 { next }
{
    r = $1; p = $2; m = $3
    rps[r, p, m] = $8; p50[r, p, m] = $5 / 1000; p99[r, p, m] = $6 / 1000
    err[r, p, m] = $7; ed[r, p, m] = $9; scpu[r, p, m] = $10; lcpu[r, p, m] = $11
    have[r, p, m] = 1; rounds[r] = 1
}
function median(arr, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
    if (n == 0) return ""
    if (n % 2) return arr[(n + 1) / 2]
    return (arr[n / 2] + arr[n / 2 + 1]) / 2
}
END {
    np = split(order, P, " "); nm = split(modes, M, " ")
    printf "peer\tmode\treq_s\tp50_ms\tp99_ms\tratio_to_direct\tratio_to_best_peer\tadded_p50_ms\tadded_p99_ms\tsrv_cpu_pct\tload_cpu_pct\terrors\terr_c/r/w/s/t\trounds\tratio_to_best_other\n"
    for (mi = 1; mi <= nm; mi++) {
        m = M[mi]
        for (pi = 1; pi <= np; pi++) {
            p = P[pi]; n = 0; e = 0
            split("", A); split("", B); split("", C); split("", D); split("", E)
            split("", F); split("", G); split("", H); split("", I); split("", ES)
            split("", O)
            for (r in rounds) {
                if (!((r, p, m) in have)) continue
                best = 0; other = 0
                for (qi = 1; qi <= np; qi++) {
                    q = P[qi]
                    if (q == "direct" || !((r, q, m) in have)) continue
                    if (rps[r, q, m] > best) best = rps[r, q, m]
                    if (q != p && rps[r, q, m] > other) other = rps[r, q, m]
                }
                n++; A[n] = rps[r, p, m]; B[n] = p50[r, p, m]; C[n] = p99[r, p, m]; e += err[r, p, m]
                d = ((r, "direct", m) in have) ? rps[r, "direct", m] : 0
                D[n] = (d > 0) ? rps[r, p, m] / d : 0
                E[n] = (best > 0) ? rps[r, p, m] / best : 0
                O[n] = (other > 0) ? rps[r, p, m] / other : 0
                F[n] = p50[r, p, m] - p50[r, "direct", m]
                G[n] = p99[r, p, m] - p99[r, "direct", m]
                H[n] = scpu[r, p, m]; I[n] = lcpu[r, p, m]
                split(ed[r, p, m], X, "/"); for (k = 1; k <= 5; k++) ES[k] += X[k]
            }
            if (n == 0) continue
            rb = (p == "direct") ? "-" : sprintf("%.3f", median(E, n))
            ro = (p == "direct") ? "-" : sprintf("%.3f", median(O, n))
            printf "%s\t%s\t%.0f\t%.3f\t%.3f\t%.3f\t%s\t%.3f\t%.3f\t%.0f\t%.0f\t%d\t%d/%d/%d/%d/%d\t%d\t%s\n", p, m, median(A, n), median(B, n), median(C, n), median(D, n), rb, median(F, n), median(G, n), median(H, n), median(I, n), e, ES[1], ES[2], ES[3], ES[4], ES[5], n, ro
        }
    }
}' "$RAW" > "$TSV"

# The summary: one row per peer, one column per mode (ratio to direct),
# the latency lat-1k adds, the memory per idle client connection; then the
# best peer but sluiced, and sluiced against it.
summary() {
    awk -F'\t' -v order="$RUN_PEERS" -v modes="$MODES" -v idle_n="$IDLE_CONNS" '
    FNR == 1 { f++; next }
    f == 1 {
        p = $1; m = $2; have[p] = 1
        rps[p, m] = $3; ratio[p, m] = $6; other[p, m] = $15
        if (m == "lat-1k") { a50[p] = $8; a99[p] = $9; p50[p] = $4; p99[p] = $5 }
        next
    }
    f == 2 {
        if ($6 > 0) kib[$1] = ($4 - $3) / $6
        else closes[$1] = 1
        next
    }
    function idle(p) {
        if (p in kib) return sprintf("%.1f", kib[p])
        if (p in closes) return "- (closes)"
        return "-"
    }
    END {
        np = split(order, P, " "); nm = split(modes, M, " ")
        printf "| peer |"
        for (i = 1; i <= nm; i++) printf " %s |", M[i]
        printf " added p50 ms | added p99 ms | KiB per idle conn |\n"
        printf "| --- |"
        for (i = 1; i <= nm + 3; i++) printf " ---: |"
        printf "\n"
        printf "| direct, req/s (p50, p99 ms) |"
        for (i = 1; i <= nm; i++) printf " %s |", rps["direct", M[i]]
        printf " (%.3f) | (%.3f) | |\n", p50["direct"], p99["direct"]
        for (j = 1; j <= np; j++) {
            p = P[j]
            if (p == "direct" || !(p in have)) continue
            printf "| %s |", (p == "sluiced") ? "**sluiced**" : p
            for (i = 1; i <= nm; i++) printf " %.3f |", ratio[p, M[i]]
            printf " %.3f | %.3f | %s |\n", a50[p], a99[p], idle(p)
        }
        others = 0
        for (j = 1; j <= np; j++)
            if (P[j] != "direct" && P[j] != "sluiced" && (P[j] in have)) others++
        if (!("sluiced" in have) || others == 0) exit
        # the best of the others: highest ratio, lowest added latency and
        # memory
        printf "| best peer but sluiced |"
        for (i = 1; i <= nm; i++) {
            b = ""
            for (j = 1; j <= np; j++) {
                p = P[j]
                if (p == "direct" || p == "sluiced" || !(p in have)) continue
                if (b == "" || ratio[p, M[i]] > ratio[b, M[i]]) b = p
            }
            best[M[i]] = b
            printf " %s %s |", (b == "") ? "-" : sprintf("%.3f", ratio[b, M[i]]), b
        }
        b50 = ""; b99 = ""; bk = ""
        for (j = 1; j <= np; j++) {
            p = P[j]
            if (p == "direct" || p == "sluiced" || !(p in have)) continue
            if (b50 == "" || a50[p] < a50[b50]) b50 = p
            if (b99 == "" || a99[p] < a99[b99]) b99 = p
            if ((p in kib) && (bk == "" || kib[p] < kib[bk])) bk = p
        }
        printf " %.3f %s | %.3f %s | %s |\n", a50[b50], b50, a99[b99], b99, (bk == "") ? "-" : sprintf("%.1f %s", kib[bk], bk)
        printf "| **sluiced / best peer** |"
        for (i = 1; i <= nm; i++) printf " **%s** |", other["sluiced", M[i]]
        printf " %+.3f | %+.3f | %s |\n", a50["sluiced"] - a50[b50], a99["sluiced"] - a99[b99], (bk != "" && ("sluiced" in kib) && kib[bk] > 0) ? sprintf("%.2f", kib["sluiced"] / kib[bk]) : "-"
    }' "$TSV" "$IDLE"
}

idle_table() {
    echo "| peer | VmRSS fresh, KiB | VmRSS with $IDLE_CONNS idle, KiB | KiB per idle connection | answered 200 | still open |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' 'NR > 1 {
        printf "| %s | %d | %d | %s | %d | %d |\n", $1, $3, $4,
            ($6 > 0) ? sprintf("%.1f", ($4 - $3) / $6) : "- (closes)", $5, $6
    }' "$IDLE"
}

perf_section() {
    local n
    [ -f "$RUNDIR/perf-run.txt" ] || return 0
    n=$(awk '{ print $1 }' "$RUNDIR/perf-run.txt")
    echo
    # (head closes the pipes early: pipefail must not end the report)
    echo "## Profile of sluiced (PERF=1)"
    echo
    echo "One more ka-1k run through sluiced, not in the tables: ${n:-?} requests," \
         "$(awk '{ print $6 }' "$RUNDIR/perf-run.txt") req/s under \`perf record -F 999 -g\` and \`perf stat\`."
    echo
    echo '```'
    if [ -s "$RUNDIR/perf-stat.txt" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
        echo "syscalls and context switches of sluiced per request:"
        awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ {
            e = $3; sub(/^syscalls:sys_enter_/, "", e)
            sub(/^raw_syscalls:sys_enter$/, "all syscalls", e)
            printf "  %-16s %6.2f\n", e, $1 / n
        }' "$RUNDIR/perf-stat.txt"
    fi
    if [ -s "$RUNDIR/perf.data" ]; then
        echo "CPU samples by thread:"
        perf report -i "$RUNDIR/perf.data" --stdio --no-children \
            --sort comm -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8 || true
        echo "CPU samples by symbol (top 40):"
        perf report -i "$RUNDIR/perf.data" --stdio --no-children \
            --sort dso,symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
            sed 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' | head -40 || true
    fi
    echo '```'
}

{
    echo "# Forward proxies side by side ($(date -u -d @"$START_EPOCH" +%Y-%m-%d))"
    echo
    [ -n "$NOTE" ] && { echo "$NOTE"; echo; }
    echo "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER." \
         "Rounds: $REPEAT; duration: $(( $(date +%s) - START_EPOCH )) s."
    echo
    echo "## Summary"
    echo
    summary
    echo
    echo "Each mode's column: the peer's req/s / direct's req/s (median over rounds)." \
         "Added p50 / p99: lat-1k (1 connection, one request at a time), peer minus direct, ms." \
         "KiB per idle conn: VmRSS of a fresh instance (its processes summed) with $IDLE_CONNS idle keep-alive client connections open, each having carried one 1 KiB request, minus without, / the connections still open (kernel socket buffers not included; IDLE_CONNS=0: not measured)." \
         "Best peer but sluiced: the highest ratio (lowest latency, memory) among the others;" \
         "sluiced / best peer: sluiced's req/s / the best other peer's req/s in each round (median), sluiced's added latency minus the best one's (ms), sluiced's KiB / the lowest."
    echo
    echo "## All figures"
    echo
    echo "| peer | mode | req/s | p50 ms | p99 ms | ratio to direct | ratio to best peer | added p50 ms | added p99 ms | CPU srv/wrk % | errors (c/r/w/s/t) |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ($12 > 0 ? $13 : "0") }' "$TSV"
    echo
    echo "Modes: ka-1k = $CONNS keep-alive connections, 1 KiB body, ${T_KA} s;" \
         "close-1k = $CONNS connections, \`Connection: close\` (new TCP connection per request), ${T_CLOSE} s;" \
         "ka-64k = $CONNS keep-alive connections, 64 KiB body, ${T_BIG} s;" \
         "lat-1k = 1 keep-alive connection, sequential requests, ${T_LAT} s."
    echo "Ratios use req/s in every mode (in lat-1k, req/s = 1 / mean latency); ratio to best peer excludes direct." \
         "Added latency = peer minus direct in the same mode. Rounds: $REPEAT (every figure, ratios included, is the median over rounds)."
    if [ "$PIN" = 1 ]; then
        echo "Pinning: origin and proxy on CPU $CPU_SERVERS, wrk (1 thread) on CPU $CPU_LOAD; CPU srv/wrk = busy % of those cores during the point."
    else
        echo "Pinning: none; CPU = busy % of all cores."
    fi
    if [ "$IDLE_CONNS" -gt 0 ]; then
        echo
        echo "## Memory per idle client connection"
        echo
        idle_table
        echo
        echo "Each peer started afresh after the rounds; VmRSS summed over its processes" \
             "(nginx: master and worker); read before and 1 s after opening the connections" \
             "(bench/peers/idle.py, on CPU $CPU_LOAD)."
    fi
    echo
    echo "## Versions"
    echo
    echo "| peer | version | Debian package | client keep-alive kept |"
    echo "| --- | --- | --- | --- |"
    for p in $RUN_PEERS; do
        [ -n "${VERSION[$p]:-}" ] || continue
        echo "| $p | ${VERSION[$p]} | $(package_of "$p") | ${KA[$p]} |"
    done
    echo
    echo "Load generator: $(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//') ($(package_of wrk));" \
         "kernel $(uname -r); CPU $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') x $(nproc); $(date -u -d @"$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)."
    [ -n "$SKIPPED" ] && echo "Skipped:$SKIPPED."
    [ -n "$FAILED" ] && echo "Failed to start or probe:$FAILED."
    perf_section
    true
} > "$MD"

cat "$MD"
log "Markdown: $MD"
log "raw per-round TSV: $RAW"
[ "$IDLE_CONNS" -gt 0 ] && log "idle connections TSV: $IDLE"
true
