#!/usr/bin/env bash
# 73-jobs-disk: a full disk under the job store (SPEC section 6, 8). The
# state directory is a 2 MiB tmpfs (in a mount namespace of the test's
# own, so nothing outlives it); once it is filled, new jobs get 503
# job_store_unavailable while synchronous requests still work; once space
# is freed, jobs are accepted again. Needs root (mount): skipped otherwise.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
if [ -z "${SLUICE_IN_MOUNT_NS:-}" ]; then
	if [ "$(id -u)" -eq 0 ] &&
		unshare -m --propagation private true 2>/dev/null; then
		SLUICE_IN_MOUNT_NS=1 exec unshare -m --propagation private \
			bash "$0" "$@"
	fi
	echo "SKIP: 73-jobs-disk: needs root and unshare -m to mount a tmpfs" >&2
	exit 77
fi
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

mkdir -p "$TMP/state"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$TMP/state" 2>/dev/null ||
	skip "cannot mount a tmpfs on the state directory"
unmount() { umount "$TMP/state" 2>/dev/null || true; }

start_origin
O=http://127.0.0.1:$ORIGIN_PORT
start_receiver
R=http://127.0.0.1:$RECEIVER_PORT
write_config
start_sluiced
head -c 262144 /dev/urandom > "$TMP/big"

say "a job while there is room: 202"
s=$(http_status -X POST --data-binary @"$TMP/big" \
	-H "X-EZTHROTTLE-WEBHOOK: $R/h" "$O/upload")
assert_eq 202 "$s" "job on a disk with room"

say "filling the state directory"
dd if=/dev/zero of="$TMP/state/fill" bs=4k 2>/dev/null || true
df -k "$TMP/state" | tail -n 1 | sed 's/^/# /'

say "disk full: new jobs get 503 job_store_unavailable"
s=$(http_status -X POST --data-binary @"$TMP/big" \
	-H "X-EZTHROTTLE-WEBHOOK: $R/h" "$O/upload?full=1")
assert_error 503 job_store_unavailable "$s" "job on a full disk"
assert_match 'space|full' "$(json "$TMP/body" 'd["message"]')" \
	"the message says why"
assert_eq 1 "$(header Retry-After)" "Retry-After"
say "... synchronous requests are unaffected"
s=$(http_status -X POST --data-binary @"$TMP/big" "$O/upload?sync=1")
assert_eq 200 "$s" "synchronous request on a full disk"
assert_serving "a full disk"
assert_eq 0 "$(origin_count 'full=1')" "a refused job reached the origin"

say "space freed: jobs are accepted again"
rm -f "$TMP/state/fill"
s=$(http_status -X POST --data-binary @"$TMP/big" \
	-H "X-EZTHROTTLE-WEBHOOK: $R/h" "$O/upload?again=1")
assert_eq 202 "$s" "job after freeing space"
id=$(json "$TMP/body" 'd["job_id"]')
wait_for "any(d['json']['job_id'] == '$id' for d in ds)" 10 ||
	fail "the job accepted after the disk was full was not delivered"
stop_sluiced
unmount
say "ok"
