#!/usr/bin/env bash
# A process guest moved by migrd with the CRIU backend (TAP): vmig-guest
# starts g1 on h1 (its own PID and network namespaces, a counter loop);
# `vmigrate g1 h2` on h1 suspends nothing (no RDMA in it), dumps it with
# CRIU (migrd/backend-criu.sh -> vmig-guest checkpoint), carries the
# images over the segment (image_dir is tmpfs on each host), restores it
# on h2; the counter goes on there from where it stopped.
set -uo pipefail

SRC=${VMIG_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
BUILD=${VMIG_BUILD_DIR:-$SRC/build}
export VMIG_TESTBED_DIR=${VMIG_TESTBED_DIR:-$BUILD/testbed-migrd}
export VMIG_TB_OWNER=$$
TB=$SRC/tests/testbed/testbed.sh
MIGRD=$BUILD/migrd/migrd
VMIGRATE=$BUILD/tools/vmigrate
VGUEST=$BUILD/tools/vmig-guest
BACKEND=$BUILD/migrd/backend-criu.sh
SH=$VMIG_TESTBED_DIR/shared-criu

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
tbx() { "$TB" exec --timeout 300 "$@"; }
finish() {
	[ "${MIGRD_TB_KEEP:-0}" = 1 ] || "$TB" down >/dev/null 2>&1
	echo "1..$n"
	[ "$failed" -eq 0 ]
	exit
}
trap finish EXIT

for f in "$MIGRD" "$VMIGRATE" "$VGUEST" "$BACKEND"; do
	[ -x "$f" ] || { echo "1..0 # SKIP $f not built"; trap - EXIT; exit 0; }
done
"$TB" down >/dev/null 2>&1
if ! "$TB" up 2 >&2; then
	nok "testbed up 2"
	exit 1
fi
ok "testbed up 2"

rm -rf "$SH"
mkdir -p "$SH"
head -c 32 /dev/urandom >"$SH/cluster.key"
chmod 600 "$SH/cluster.key"
cat >"$SH/migrd.conf" <<CONF
run_dir = /run/vmig
image_dir = /run/vmig/images
backend = exec
backend_exec = $BACKEND
key_file = $SH/cluster.key
restore_timeout_ms = 240000
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
CONF
for h in h1 h2; do
	check "migrd starts on $h" tbx "$h" -- bash -c \
		"VMIG_LOG_LEVEL=info $MIGRD --config $SH/migrd.conf --host $h 2>>$SH/$h.log </dev/null"
done

out=$(tbx h1 -- bash -c "mount -t devpts devpts /dev/pts 2>/dev/null
	$VGUEST start g1 -- bash -c 'i=0; while :; do i=\$((i + 1)); echo \$i > $SH/count.tmp; mv -f $SH/count.tmp $SH/count; sleep 0.2; done'" 2>&1)
echo "$out" | sed 's/^/# /'
for i in $(seq 100); do
	[ "$(cat "$SH/count" 2>/dev/null || echo 0)" -ge 5 ] && break
	sleep 0.2
done
check "guest g1 counts on h1" [ "$(cat "$SH/count" 2>/dev/null || echo 0)" -ge 5 ]
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list)
echo "$out" | sed 's/^/# /'
check "migrd on h1 lists g1 (a vmig-guest record, no shim)" grep -q "^g1 " <<<"$out"

out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" g1 h2 2>&1; echo "rc=$?")
echo "$out" | sed 's/^/# /'
check "vmigrate g1 h2: completed" grep -q "rc=0" <<<"$out"
c1=$(cat "$SH/count" 2>/dev/null || echo 0)
sleep 3
c2=$(cat "$SH/count" 2>/dev/null || echo 0)
echo "# count $c1 then $c2 three seconds later"
check "the counter goes on after the move" [ "$c2" -gt "$c1" ]
out=$(tbx h2 -- env VMIG_RUN_DIR=/run/vmig "$VGUEST" list 2>&1)
echo "$out" | sed 's/^/# /'
check "g1 runs on h2" grep -q "g1.*running" <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VGUEST" list 2>&1)
echo "$out" | sed 's/^/# /'
check "h1 has g1 away" bash -c "! grep -q 'g1.*running' <<<'$out'"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" --json status g1)
echo "$out" | grep -E '"(status|bytes-sent|downtime-ms|total-time-ms)"|"(dump|transfer|restore)"' | sed 's/^/# /'
tail -n 15 "$SH/h1.log" | sed 's/^/# h1: /'
tail -n 15 "$SH/h2.log" | sed 's/^/# h2: /'
