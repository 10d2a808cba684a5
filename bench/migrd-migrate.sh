#!/usr/bin/env bash
# Migration figures on the testbed: a plain process guest (bench/memload,
# no RDMA) of MIB MiB moved h1 -> h2 by migrd (vmigrate), against plain
# CRIU of the same guest by hand (vmig-guest checkpoint, tar | socat over
# the segment, vmig-guest restore). Prints total time, downtime and phase
# times; times as ratios within one run (TCG hosts: absolute figures mean
# little). Usage: bench/migrd-migrate.sh [MIB...]   (default 64)
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VMIG_BUILD_DIR:-$SRC/build}
export VMIG_TESTBED_DIR=${VMIG_TESTBED_DIR:-$BUILD/testbed-bench-migrd}
export VMIG_TB_OWNER=$$
TB=$SRC/tests/testbed/testbed.sh
SH=$VMIG_TESTBED_DIR/shared-bench
MEMLOAD=$BUILD/bench/memload
VG=$BUILD/tools/vmig-guest
tbx() { "$TB" exec --timeout 1800 "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
trap '"$TB" down >/dev/null 2>&1' EXIT

"$TB" down >/dev/null 2>&1
"$TB" up 2 >&2 || exit 1
rm -rf "$SH"
mkdir -p "$SH"
head -c 32 /dev/urandom >"$SH/key"
chmod 600 "$SH/key"
cat >"$SH/migrd.conf" <<CONF
run_dir = /run/vmig
image_dir = /run/vmig/images
backend = exec
backend_exec = $BUILD/migrd/backend-criu.sh
key_file = $SH/key
restore_timeout_ms = 600000
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
CONF
for h in h1 h2; do
	tbx $h -- bash -c "VMIG_LOG_LEVEL=info $BUILD/migrd/migrd --config $SH/migrd.conf --host $h 2>>$SH/$h.log"
done

for mib in "${@:-64}"; do
	# migrd
	tbx h1 -- $VG start m$mib -- $MEMLOAD -m $mib --ready $SH/m$mib.ready >/dev/null
	for i in $(seq 600); do [ -s $SH/m$mib.ready ] && break; sleep 0.2; done
	t0=$(now)
	j=$(tbx h1 -- env VMIG_RUN_DIR=/run/vmig $BUILD/tools/vmigrate --json m$mib h2)
	t1=$(now)
	echo "$j" >"$SH/m$mib.json"
	python3 - "$j" "$mib" "$(secs $t0 $t1)" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
p = m["phase-times-ms"]
print(f"migrd   {sys.argv[2]:>4} MiB: {m['status']}, total {m['total-time-ms']/1000:.1f} s "
      f"(seen from outside {sys.argv[3]} s), downtime {m['downtime-ms']/1000:.1f} s, "
      f"{m['bytes-sent']/1048576:.1f} MiB sent")
print("         phases: " + ", ".join(f"{k} {v/1000:.1f} s" for k, v in p.items()))
PY
	# plain CRIU by hand, the same kind of guest
	tbx h1 -- $VG start p$mib -- $MEMLOAD -m $mib --ready $SH/p$mib.ready >/dev/null
	for i in $(seq 600); do [ -s $SH/p$mib.ready ] && break; sleep 0.2; done
	tbx h2 -- bash -c "rm -rf /tmp/ck; mkdir -p /tmp/ck; setsid bash -c 'socat -u TCP-LISTEN:7100,reuseaddr - | tar -x -C /tmp/ck && $VG restore p$mib /tmp/ck && touch $SH/p$mib.done' </dev/null >$SH/p$mib.restore.log 2>&1 &"
	sleep 1
	t0=$(now)
	tbx h1 -- bash -c "rm -rf /tmp/ck && $VG checkpoint p$mib /tmp/ck && tar -C /tmp/ck -cf - . | socat -u - TCP:10.77.0.2:7100" >/dev/null
	t1=$(now)
	for i in $(seq 6000); do [ -e $SH/p$mib.done ] && break; sleep 0.05; done
	t2=$(now)
	echo "plain   $(printf '%4d' $mib) MiB: total $(secs $t0 $t2) s (checkpoint + copy $(secs $t0 $t1) s, restore $(secs $t1 $t2) s); the guest is down all along"
done
