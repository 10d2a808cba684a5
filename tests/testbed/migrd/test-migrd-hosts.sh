#!/usr/bin/env bash
# migrd across two Soft-RoCE hosts (TAP): shims register, FORWARD reaches
# the other host's shims by host name and by the rxe GID, a migrd with
# another cluster key is refused and logged while the daemons serve on, a
# stopped host is reported unreachable, and vmigrate drives a migration
# through setup. Needs the testbed (docs/testbed.md).
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
cat >"$SH/migrd.conf" <<CONF
port = 7410
run_dir = /run/vmig
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
check "vmigrate app1 h2 passes setup (both hosts answered)" grep -q "precopy" <<<"$out"
check "... and reports why it stops there, exit 1" grep -q "rc=1" <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" --json status app1)
check "vmigrate --json status: setup time reported" grep -q '"setup"' <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" web1 h2; echo "rc=$?")
check "vmigrate of a guest not on this host: refused, exit 4" grep -q "rc=4" <<<"$out"

# h2's migrd stops: h1 reports the host unreachable, promptly
tbx h2 -- kill "$(cat "$SH/h2.pid")" || true
sleep 1
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$PROBE" forward --host h2)
echo "$out" | sed 's/^/# /'
check "host h2 without migrd: ERR_UNREACHABLE" grep -q "ERROR ERR_UNREACHABLE" <<<"$out"
out=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig "$VMIGRATE" list; echo "rc=$?")
check "h1 still serves its API" grep -q "rc=0" <<<"$out"
sed 's/^/# h1: /' "$SH/h1.log" | tail -n 20
