#!/usr/bin/env bash
# migrd across two Soft-RoCE hosts (TAP): shims register, FORWARD reaches
# the other host's shims by host name and by the rxe GID, a migrd with
# another cluster key is refused and logged while the daemons serve on;
# vmigrate moves a (stand-in) guest from h1 to h2 with its checkpoint
# carried by migrd over the segment; the destination's migrd killed during
# a migration rolls the guest back to h1; a stopped host is reported
# unreachable. Needs the testbed (docs/testbed.md).
set -uo pipefail

SRC=${VMIG_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
BUILD=${VMIG_BUILD_DIR:-$SRC/build}
export VMIG_TESTBED_DIR=${VMIG_TESTBED_DIR:-$BUILD/testbed-migrd}
export VMIG_TB_OWNER=$$
TB=$SRC/tests/testbed/testbed.sh
MIGRD=$BUILD/migrd/migrd
VMIGRATE=$BUILD/tools/vmigrate
PROBE=$BUILD/tests/unit/migrd-probe
SH=$VMIG_TESTBED_DIR/shared

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { # check DESC CMD...: ok when CMD succeeds
	local d=$1
	shift
	if "$@"; then ok "$d"; else nok "$d"; fi
}
tbx() { "$TB" exec --timeout 120 "$@"; }
finish() {
	"$TB" down >/dev/null 2>&1
	echo "1..$n"
	[ "$failed" -eq 0 ]
	exit
}
trap finish EXIT

for f in "$MIGRD" "$VMIGRATE" "$PROBE"; do
	[ -x "$f" ] || { echo "1..0 # SKIP $f not built"; trap - EXIT; exit 0; }
done
"$TB" down >/dev/null 2>&1
if ! "$TB" up 2 >&2; then
	nok "testbed up 2"
	exit 1
fi
ok "testbed up 2"

# Deployment files: the config and keys reach the hosts like any config
# management would put them there; control traffic goes over the network.
rm -rf "$SH"
mkdir -p "$SH"
head -c 32 /dev/urandom >"$SH/cluster.key"
head -c 32 /dev/urandom >"$SH/other.key"
chmod 600 "$SH/cluster.key" "$SH/other.key"
# A test backend: "dump" stops the stand-in shim and writes a checkpoint
# into migrd's image_dir (tmpfs on each host: only migrd's own transfer
# can bring it to the other host); "restore" checks it and starts the
# stand-in again.
cat >"$SH/backend" <<SHB
#!/bin/sh
set -eu
op=\$1 guest=\$2 dir=\$3
case \$op in
dump)
	kill "\$(cat "\$VMIG_RUN_DIR/probe-\$guest.pid")"
	rm -f "\$VMIG_RUN_DIR/probe-\$guest.pid"
	case \$guest in slow*) sleep 4 ;; esac
	head -c 2500000 /dev/urandom >"\$dir/pages.img"
	echo "\$guest from \$VMIG_HOST" >"\$dir/inventory"
	(cd "\$dir" && sha256sum pages.img inventory) >"$SH/sums-\$guest"
	;;
restore)
	(cd "\$dir" && sha256sum -c --quiet "$SH/sums-\$guest") || { echo "checkpoint damaged"; exit 1; }
	setsid $PROBE shim "\$guest" >>"$SH/probe-\$VMIG_HOST.log" 2>&1 </dev/null &
	;;
esac
SHB
chmod +x "$SH/backend"
cat >"$SH/migrd.conf" <<CONF
port = 7410
run_dir = /run/vmig
image_dir = /run/vmig/images
backend = exec
backend_exec = $SH/backend
key_file = $SH/cluster.key
forward_timeout_ms = 8000
connect_timeout_ms = 5000
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
peer.h2bad = 10.77.0.2:7420
CONF
cat >"$SH/bad.conf" <<CONF
host = h2bad
port = 7420
run_dir = /run/vmig-bad
key_file = $SH/other.key
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
CONF

start_migrd() { # HOST CONF LOG [--host NAME]
	local h=$1 conf=$2 log=$3
	shift 3
	# the redirection happens on the host: the daemon keeps that stderr
	tbx "$h" -- bash -c "VMIG_LOG_LEVEL=info $MIGRD --config $conf $* \
		2>>$SH/$log </dev/null"
}
check "migrd starts on h1" start_migrd h1 "$SH/migrd.conf" h1.log --host h1
# h2's runs in the foreground, so the test knows its pid to stop it later
check "migrd starts on h2 (foreground)" tbx h2 -- bash -c "
	VMIG_LOG_LEVEL=info setsid $MIGRD --config $SH/migrd.conf --host h2 \
		--foreground </dev/null 2>>$SH/h2.log &
	echo \$! >$SH/h2.pid
	for i in \$(seq 100); do [ -S /run/vmig/migrd.sock ] && exit 0; sleep 0.1; done
	exit 1"
check "a migrd with another key starts on h2 (h2bad)" \
	start_migrd h2 "$SH/bad.conf" h2bad.log

# a stand-in shim of guest web1 on h2 (the real shim registers the same way)
tbx h2 -- bash -c "setsid $PROBE shim web1 >$SH/probe-h2.log 2>&1 </dev/null &"
for i in $(seq 50); do
	grep -q registered "$SH/probe-h2.log" 2>/dev/null && break
	sleep 0.2
done
check "shim registers with migrd on h2" grep -q "registered .* guest web1 with migrd of h2" "$SH/probe-h2.log"

out=$(tbx h2 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list)
echo "$out" | sed 's/^/# /'
check "vmigrate list on h2 shows web1" grep -q "^web1 *1" <<<"$out"

out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$PROBE" forward --host h2)
echo "$out" | sed 's/^/# /'
check "FORWARD h1 -> h2 by name reaches web1's shim" \
	grep -q "reply CTL_STATE pid=[0-9]* guest=web1 host=h2" <<<"$out"

# h2's RoCE v2 GID (IPv4-mapped) as the shim would see a remote endpoint
gid=$(tbx h2 -- bash -c 'for g in /sys/class/infiniband/rxe0/ports/1/gids/*; do v=$(cat $g); case $v in 0000:0000:0000:0000:0000:ffff:*) echo $v; break;; esac; done')
echo "# h2 GID: $gid"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$PROBE" forward --gid "$gid")
echo "$out" | sed 's/^/# /'
check "FORWARD h1 -> h2 by rxe GID reaches web1's shim" \
	grep -q "reply CTL_STATE pid=[0-9]* guest=web1 host=h2" <<<"$out"

out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$PROBE" forward --host h2bad)
echo "$out" | sed 's/^/# /'
check "FORWARD to the wrong-key migrd: ERR_AUTH" grep -q "ERROR ERR_AUTH" <<<"$out"
check "h1 logs that h2bad failed to prove the key" \
	grep -q "h2bad.*failed to prove the cluster key" "$SH/h1.log"
check "h2bad logs the refusal" grep -q "refused" "$SH/h2bad.log"

out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$PROBE" forward --host h2 --guest web1)
check "h1 and h2 serve on after the refusal" grep -q "replies=1" <<<"$out"

# migration through the API: app1 on h1 to h2 (setup needs both hosts)
tbx h1 -- bash -c "setsid $PROBE shim app1 >$SH/probe-h1.log 2>&1 </dev/null &"
for i in $(seq 50); do
	grep -q registered "$SH/probe-h1.log" 2>/dev/null && break
	sleep 0.2
done
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" app1 h2; echo "rc=$?")
echo "$out" | sed 's/^/# /'
check "vmigrate app1 h2: completed, exit 0" grep -q "rc=0" <<<"$out"
out=$(tbx h2 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list)
check "app1 now runs on h2 (its checkpoint crossed the network intact)" grep -q "^app1 " <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" --json status app1)
echo "$out" | grep -E '"(status|bytes-sent|downtime-ms|total-time-ms)"' | sed 's/^/# /'
check "status: completed, every phase timed" python3 -c '
import json, sys
m = json.loads(sys.argv[1])
assert m["status"] == "completed"
assert len(m["phase-times-ms"]) == 9, m["phase-times-ms"]
assert m["bytes-sent"] > 2500000
' "$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" web1 h2; echo "rc=$?")
check "vmigrate of a guest not on this host: refused, exit 4" grep -q "rc=4" <<<"$out"

# the destination's migrd dies while the guest is being dumped: the
# transfer fails and the guest comes back on the source
tbx h1 -- bash -c "VMIG_RUN_DIR=/run/vmig setsid $PROBE shim slow1 >>$SH/probe-h1.log 2>&1 </dev/null &"
for i in $(seq 50); do
	tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list | grep -q "^slow1 " && break
	sleep 0.2
done
tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" --no-wait slow1 h2 >/dev/null
sleep 1.5
tbx h2 -- kill "$(cat "$SH/h2.pid")" || true
for i in $(seq 100); do
	out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" status slow1)
	grep -q "failed" <<<"$out" && break
	sleep 0.5
done
echo "$out" | sed 's/^/# /'
check "destination killed mid-migration: failed, rolled back" \
	grep -q "runs on the source" <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list)
check "slow1 runs on h1 again" grep -q "^slow1 " <<<"$out"

# h2's migrd is gone: h1 reports the host unreachable, promptly
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$PROBE" forward --host h2)
echo "$out" | sed 's/^/# /'
check "host h2 without migrd: ERR_UNREACHABLE" grep -q "ERROR ERR_UNREACHABLE" <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list; echo "rc=$?")
check "h1 still serves its API" grep -q "rc=0" <<<"$out"
sed 's/^/# h1: /' "$SH/h1.log" | tail -n 20
