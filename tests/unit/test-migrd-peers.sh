#!/usr/bin/env bash
# Migration with peers, on loopback (TAP): hA (127.0.0.2) and hB
# (127.0.0.3) each run migrd; stand-in shims report RDMA connections whose
# GIDs name those addresses. Moving web1 from hA to hB must suspend its
# peer on hB with a filter, reset and reconnect the peer against web1's new
# ends, reconnect web1 against the peer's, and resume the peer before the
# guest. A peer whose drain times out makes the migration fail and both
# ends resume as they were; a peer host that does not answer stops the
# migration in setup before anything is suspended.
# Usage: test-migrd-peers.sh MIGRD VMIGRATE PROBE
set -uo pipefail

MIGRD=$1 VMIGRATE=$2 PROBE=$3
T=$(mktemp -d /tmp/vmig-peers-XXXXXX)
. "$(dirname "$0")/tap.sh"
pids=()
finish() {
	local p f
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$T"/h*/run/probe-*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	wait 2>/dev/null
	echo "1..$n"
	rm -rf "$T"
	[ "$failed" -eq 0 ]
	exit
}
trap finish EXIT

python3 -c 'import socket; socket.socket().bind(("127.0.0.3", 0))' 2>/dev/null || {
	echo "1..0 # SKIP no 127.0.0.3 on lo"; trap - EXIT; rm -rf "$T"; exit 0; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port)
head -c 32 /dev/urandom >"$T/key"
chmod 600 "$T/key"

# backend: the stand-in's arguments are its "memory": they travel in the
# checkpoint; restored, it reports its ends at the new host's address
cat >"$T/backend" <<'SH'
#!/bin/sh
set -eu
op=$1 guest=$2 dir=$3
case $VMIG_HOST in hA) addr=127.0.0.2 ;; *) addr=127.0.0.3 ;; esac
case $op in
dump)
	pid=$(cat "$VMIG_RUN_DIR/probe-$guest.pid")
	tr '\0' '\n' </proc/$pid/cmdline | tail -n +4 |
		awk 'skip { skip = 0; next } /^--(addr|log)$/ { skip = 1; next } { print }' >"$dir/args"
	kill "$pid"
	rm -f "$VMIG_RUN_DIR/probe-$guest.pid"
	;;
restore)
	set --
	while read -r a; do set -- "$@" "$a"; done <"$dir/args"
	setsid PROBE shim "$guest" --addr $addr --log "TDIR/$guest-$VMIG_HOST.log" "$@" \
		>>"$VMIG_RUN_DIR/probe.log" 2>&1 </dev/null &
	;;
moved) ;;
esac
SH
sed -i -e "s|PROBE shim|$PROBE shim|" -e "s|TDIR/|$T/|" "$T/backend"
chmod +x "$T/backend"

for h in A B; do
	addr=$([ $h = A ] && echo 127.0.0.2 || echo 127.0.0.3)
	mkdir -p "$T/h$h"
	cat >"$T/h$h/conf" <<CONF
host = h$h
listen = $addr
port = $P
run_dir = $T/h$h/run
image_dir = $T/h$h/images
key_file = $T/key
backend = exec
backend_exec = $T/backend
forward_timeout_ms = 3000
connect_timeout_ms = 1000
drain_timeout_ms = 2000
restore_timeout_ms = 10000
peer.hA = 127.0.0.2
peer.hB = 127.0.0.3
CONF
	VMIG_LOG_LEVEL=info "$MIGRD" --config "$T/h$h/conf" --foreground \
		2>"$T/h$h/log" &
	pids+=($!)
done
for i in $(seq 100); do
	[ -S "$T/hA/run/migrd-api.sock" ] && [ -S "$T/hB/run/migrd-api.sock" ] && break
	sleep 0.05
done
A="$VMIGRATE --socket $T/hA/run/migrd-api.sock"
B="$VMIGRATE --socket $T/hB/run/migrd-api.sock"

start() { # HOST GUEST ARGS...: a stand-in shim
	local h=$1 g=$2 addr
	shift 2
	addr=$([ "$h" = A ] && echo 127.0.0.2 || echo 127.0.0.3)
	VMIG_RUN_DIR=$T/h$h/run setsid "$PROBE" shim "$g" --addr $addr \
		--log "$T/$g-h$h.log" "$@" >>"$T/h$h/probe.log" 2>&1 </dev/null &
	for i in $(seq 100); do
		$([ "$h" = A ] && echo "$A" || echo "$B") list 2>/dev/null | grep -q "^$g " && return 0
		sleep 0.05
	done
	return 1
}
order() { # FILE LINE...: the lines appear in this order
	local f=$1 pat at=0 l
	shift
	for pat in "$@"; do
		l=$(grep -n -- "$pat" "$f" | cut -d: -f1 | awk -v a="$at" '$1 > a { print; exit }')
		[ -n "$l" ] || return 1
		at=$l
	done
}

# web1 (hA, qpn 0x11) <-> peer1 (hB, qpn 0x22)
check "peer1 starts on hB" start B peer1 --conn 0x22:0x11:127.0.0.2
check "web1 starts on hA" start A web1 --conn 0x11:0x22:127.0.0.3
out=$($A web1 hB 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "vmigrate web1 hB with a peer on hB: completed" [ $rc -eq 0 ]
j=$($A --json status web1)
check "setup counted 1 process, 1 connection" python3 -c '
import json, sys
m = json.loads(sys.argv[1]); assert m["processes"] == 1 and m["connections"] == 1, m' "$j"
sed 's/^/# peer1: /' "$T/peer1-hB.log"
check "peer1: suspended with a filter, reset and reconnected to web1's new end, resumed" \
	order "$T/peer1-hB.log" "^CTL_SUSPEND filter=1" "^CTL_RECONNECT reset=1 peers=1" "^CTL_RESUME"
check "web1 on hA: suspended (all), torn down" \
	order "$T/web1-hA.log" "^CTL_STATE" "^CTL_SUSPEND filter=0" "^CTL_TEARDOWN"
sed 's/^/# web1@hB: /' "$T/web1-hB.log"
check "web1 on hB: restored, reconnected to the peer's and its own ends, resumed" \
	order "$T/web1-hB.log" "^CTL_RESTORE" "^CTL_RECONNECT reset=0 peers=2" "^CTL_RESUME"
check "the peer resumed before the guest" python3 -c '
import os, sys
a = os.path.getmtime(sys.argv[1]); b = os.path.getmtime(sys.argv[2])
assert a <= b' "$T/peer1-hB.log" "$T/web1-hB.log"

# a peer whose drain cannot finish: fail, both ends resume where they were
check "peer2 (drain times out) starts on hB" start B peer2 --conn 0x44:0x33:127.0.0.2 --fail-suspend
check "g2 starts on hA" start A g2 --conn 0x33:0x44:127.0.0.3
out=$($A g2 hB 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "drain timeout at the peer: exit 1" [ $rc -eq 1 ]
check "... reason: the drain, and the guest runs on the source" \
	grep -q "drain did not finish.*runs on the source" <<<"$out"
check "g2 was suspended, then aborted (resumed as before)" \
	order "$T/g2-hA.log" "^CTL_SUSPEND" "^CTL_ABORT"
check "peer2 got the abort too" order "$T/peer2-hB.log" "^CTL_SUSPEND filter=1" "^CTL_ABORT"
check "g2 never torn down" bash -c "! grep -q TEARDOWN '$T/g2-hA.log'"
check "g2 still on hA" bash -c "$A list | grep -q '^g2 '"

# a peer on a host that does not answer: stop in setup, touch nothing
check "g3 starts on hA, its peer at 127.0.0.9 (no migrd)" start A g3 --conn 0x55:0x66:127.0.0.9
out=$($A g3 hB 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "peer host not answering: exit 1, in setup" \
	bash -c "[ $rc -eq 1 ] && $A --json status g3 | grep -q '\"failed-phase\": \"setup\"'"
check "... and the reason names the host" grep -q "127.0.0.9" <<<"$out"
check "g3 was only asked its state" bash -c "[ \"\$(grep -v -e '^CTL_STATE' -e '^CTL_HELLO' '$T/g3-hA.log' | wc -l)\" = 0 ]"
