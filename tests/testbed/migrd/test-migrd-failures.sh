#!/bin/bash
# Failures during a live migration of an RDMA process guest (TAP), issue 5:
# rdma_stress runs between guest rs-a on h1 and guest rs-b on h3 (both under
# the shim, in their own namespaces) for the whole test, and `vmigrate rs-a
# h2` is asked four times, each time with one failure provoked:
#  1. h2's migrd killed (SIGKILL) while it receives the checkpoint (transfer);
#  2. CRIU's restore failing on h2 (a backend wrapper that refuses restores
#     while /run/vmig/fail-restore exists there, else runs backend-criu.sh);
#  3. the peer's host not answering (h3's migrd stopped with SIGSTOP): the
#     forward to it times out in setup;
#  4. a drain that times out: RoCE from h3 dropped on h1 (nftables, UDP 4791)
#     so rs-a's posted sends stay unacknowledged past drain_timeout_ms.
# After each: vmigrate fails, query-migrate says failed and why, rs-a runs on
# h1 (and not on h2), the traffic goes on on both ends, and every migrd still
# answers. At the end rdma_stress reports nothing lost, duplicated, reordered
# or corrupted. Also: bad requests on migrd's JSON API get clear errors and
# the daemon keeps serving.
#
# rs-a carries 16 MiB of extra memory (bench/memload next to rdma_stress) so
# that the transfer lasts long enough for case 1 to hit it; rdma_stress runs
# with --qp-timeout 21 (~8.6 s per retry, 7 retries) so that the RoCE
# blackout of case 4 stays within RC's retry budget. No pre-copy rounds
# (precopy_rounds = 0): the checkpoint moves in the transfer phase, and the
# RoCE blackout of case 4 starts right before the suspend; a failed
# pre-copy round is covered by the unit test migrd-migrate.
. "$(dirname "$0")/common.sh"
tb_need 3
cp "$BUILD/bench/memload" "$STAGE/"
SECS=${VMIG_FAIL_SECS:-400}
# VMIG_FAIL_CASES: which parts run (default all: api 1 2 3 4)
CASES=" ${VMIG_FAIL_CASES:-api 1 2 3 4} "
want() { case $CASES in *" $1 "*) return 0 ;; esac; return 1; }
PY=/usr/bin/python3

cat >"$W/backend" <<EOT
#!/bin/sh
# CRIU through backend-criu.sh, except a restore on a host that has
# /run/vmig/fail-restore
if [ "\$1" = restore ] && [ -e /run/vmig/fail-restore ]; then
	echo "CRIU restore refused on \$(hostname) (test)"
	exit 1
fi
exec $BUILD/migrd/backend-criu.sh "\$@"
EOT
chmod +x "$W/backend"
migrd_conf "$W/migrd.conf" 3 "backend_exec = $W/backend" \
	"forward_timeout_ms = 8000" "connect_timeout_ms = 8000" \
	"drain_timeout_ms = 8000" "precopy_rounds = 0"
migrd_start h1 h2 h3

guest_route rs-b h3 10.78.1.2
guest_route rs-a h1 10.78.1.1

s=$(script srv.sh <<EOT
#!/bin/bash
exec vmig-run --guest rs-b --addr 10.78.1.2 -- rdma_stress -d rxe0 --timeout 900 --qp-timeout 21 --progress=5
EOT
)
c=$(script cli.sh <<EOT
#!/bin/bash
sleep 8
export VMIG_LOG_LEVEL=${VMIG_FAIL_SHIM_LOG:-warn}
exec vmig-run --guest rs-a --addr 10.78.1.1 -- sh -c "memload -m 16 --dirty 1 & exec rdma_stress -d rxe0 -t $SECS -q 2 --ops send,write,read,atomic --pause-ms 5 --qp-timeout 21 --progress=5 10.78.1.2"
EOT
)
tb_exec h3 "$s" > "$W/srv.out" 2>&1 &
sp=$!
tb_exec h1 "$c" > "$W/cli.out" 2>&1 &
cp=$!

up=0
for i in $(seq 120); do
	tb_exec h1 vmigrate list 2>/dev/null | grep -q '^rs-a ' && { up=1; break; }
	sleep 1
done
ok $((1 - up)) "guest rs-a registered with migrd on h1"

# ------------------------------------------------------------- helpers

# received count of the last progress line in a guest's log
received() {	# received HOST GUEST
	tb_exec "$1" cat "/run/vmig/guests/$2.log" 2>/dev/null |
		sed -n 's/^rdma_stress: progress .* received=\([0-9]*\) .*/\1/p' | tail -n 1
}

# Both ends' counts grow (within 90 s: a retransmission may be pending)
traffic_goes_on() {
	local a0 b0 a b i
	a0=$(received h1 rs-a)
	b0=$(received h3 rs-b)
	for i in $(seq 18); do
		sleep 5
		a=$(received h1 rs-a)
		b=$(received h3 rs-b)
		[ "${a:-0}" -gt "${a0:-0}" ] && [ "${b:-0}" -gt "${b0:-0}" ] && {
			echo "rs-a received $a0 -> $a, rs-b $b0 -> $b" | diag
			return 0
		}
	done
	echo "rs-a received $a0 -> $a, rs-b $b0 -> $b" | diag
	return 1
}

# attempt N PHASE REGEX WHAT: vmigrate rs-a h2 fails in PHASE with an
# error-desc matching REGEX; then the guest is back and everything serves
attempt() {
	local n=$1 phase=$2 re=$3 what=$4 rc t0 t1 desc
	t0=$(date +%s)
	tb_exec h1 vmigrate rs-a h2 > "$W/move-$n.out" 2>&1
	rc=$?
	t1=$(date +%s)
	tail -n 4 "$W/move-$n.out" | diag
	[ "$rc" != 0 ]
	ok $? "$n: vmigrate rs-a h2 fails ($what): exit $rc after $((t1 - t0)) s"
	tb_exec h1 vmigrate --json status rs-a > "$W/status-$n.json" 2>&1
	desc=$(jq -r '."error-desc" // ""' "$W/status-$n.json" 2>/dev/null)
	echo "status $(jq -r .status "$W/status-$n.json" 2>/dev/null), failed-phase $(jq -r '."failed-phase"' "$W/status-$n.json" 2>/dev/null): $desc" | diag
	[ "$(jq -r .status "$W/status-$n.json" 2>/dev/null)" = failed ] &&
		[ "$(jq -r '."failed-phase"' "$W/status-$n.json" 2>/dev/null)" = "$phase" ]
	ok $? "$n: query-migrate: status failed in phase $phase"
	echo "$desc" | grep -Eq "$re" && echo "$desc" | grep -q "the guest runs on the source"
	ok $? "$n: the reason names the failure (/$re/) and says the guest runs on the source"
}

back_on_h1() {	# back_on_h1 N
	local n=$1 i up=1
	for i in $(seq 60); do
		tb_exec h1 vmigrate list 2>/dev/null | grep -Eq '^rs-a +1 ' && { up=0; break; }
		sleep 2
	done
	tb_exec h1 vmig-guest list > "$W/guests-h1-$n.out" 2>&1
	tb_exec h2 vmig-guest list > "$W/guests-h2-$n.out" 2>&1
	grep -Eq '^rs-a +running' "$W/guests-h1-$n.out" && [ "$up" = 0 ]
	ok $? "$n: rs-a runs on h1 and its shim registered there again"
	# h2 knows rs-a only as a route to h1 (vmig-guest route: state away)
	! grep -Eq '^rs-a +(running|checkpointing)' "$W/guests-h2-$n.out" &&
		grep -Eq '^rs-a +away .*via 10\.77\.0\.1' "$W/guests-h2-$n.out"
	ok $? "$n: h2 has no rs-a running (only its route via h1)"
	traffic_goes_on
	ok $? "$n: the traffic goes on on both ends (the peer reconnected)"
}

serving() {	# serving N HOSTS...
	local n=$1 h bad=
	shift
	for h in "$@"; do
		tb_exec "$h" vmigrate list > /dev/null 2>&1 || bad="$bad $h"
	done
	[ -z "$bad" ]
	ok $? "$n: migrd answers on $* ${bad:+(not on$bad)}"
}

# ------------------------------------------------------------- bad API input
if want api; then
sleep 10
api=$(script api.py <<'EOT'
#!/usr/bin/python3
# bad requests on migrd's JSON API: each gets its error, the session serves on
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect("/run/vmig/migrd-api.sock")
f = s.makefile("rw")
def reply():
    while True:
        m = json.loads(f.readline())
        if "event" not in m:
            return m
greet = json.loads(f.readline())
bad = 0
for line, want in [
    ('{"execute":"list-guests"}', "CommandNotFound"),
    ('{"execute":"qmp_capabilities"}', None),
    ('garbage{', "GenericError"),
    ('[1,2]', "GenericError"),
    ('{"execute":"no-such-command","id":7}', "CommandNotFound"),
    ('{"execute":"query-guest","arguments":{"guest":5}}', "GenericError"),
    ('{"execute":"migrate","arguments":{"guest":"rs-a","host":["h2"]}}', "GenericError"),
    ('{"execute":"migrate","arguments":{"guest":"rs-a","host":"h2","x":1}}', "GenericError"),
    ('{"execute":"query-guest","arguments":{"guest":"no-such-guest"}}', "DeviceNotFound"),
    ('{"execute":"migrate","arguments":{"guest":"no-such-guest","host":"h2"}}', "DeviceNotFound"),
    ('{"execute":"migrate","arguments":{"guest":"rs-a","host":"h9"}}', "DeviceNotFound"),
    ('{"execute":"migrate-cancel","arguments":{"guest":"no-such-guest"}}', "DeviceNotFound"),
    ('{"execute":"list-guests"}', None),
]:
    f.write(line + "\n")
    f.flush()
    r = reply()
    got = r["error"]["class"] if "error" in r else None
    desc = r["error"].get("desc", "") if "error" in r else ""
    good = got == want and (want is None or len(desc) > 5)
    bad += not good
    print("%s %s -> %s" % ("ok" if good else "WRONG", line, json.dumps(r)[:160]))
lg = r.get("return", [])
print("list-guests after them: %s" % json.dumps(lg))
sys.exit(1 if bad or not any(g.get("name") == "rs-a" for g in lg) else 0)
EOT
)
tb_exec h1 "$api" > "$W/api.out" 2>&1
rc=$?
diag < "$W/api.out"
ok $rc "API: bad JSON, unknown commands, wrong types, unknown guests and hosts get clear errors; the session serves on"
tb_exec h1 vmigrate migrate no-such-guest h2 > "$W/api-cli.out" 2>&1
rc=$?
diag < "$W/api-cli.out"
[ "$rc" != 0 ] && grep -q "no-such-guest" "$W/api-cli.out"
ok $? "API: vmigrate of a guest that does not exist fails with its name"
tb_exec h1 vmigrate list 2>/dev/null | grep -q '^rs-a '
ok $? "API: migrd on h1 still serves, rs-a not disturbed"

fi
# ------------------------------------------------------------- 1. destination killed
if want 1; then
k=$(script kill-dest.sh <<'EOT'
#!/bin/bash
# SIGKILL this host's migrd once it has received part of rs-a's checkpoint
for i in $(seq 3000); do
	b=$(du -sb /run/vmig/images/in-rs-a 2>/dev/null | cut -f1)
	if [ "${b:-0}" -gt 2000000 ]; then
		kill -9 "$(cat /run/vmig/migrd.pid)"
		echo "killed migrd with $b bytes received"
		exit 0
	fi
	sleep 0.1
done
echo "never saw the transfer"
exit 1
EOT
)
tb_exec h2 "$k" > "$W/kill-dest.out" 2>&1 &
kp=$!
sleep 3
attempt 1 transfer "transfer to h2" "h2's migrd killed mid-transfer"
wait $kp
ok $? "1: $(cat "$W/kill-dest.out")"
back_on_h1 1
serving 1 h1 h3
tb_exec h2 "$W/migrd.sh"
ok $? "1: migrd restarted on h2"
serving 1 h2

fi
# ------------------------------------------------------------- 2. restore fails
if want 2; then
sleep 10
tb_exec h2 touch /run/vmig/fail-restore
attempt 2 restore "restore on h2.*CRIU restore refused on h2" "CRIU restore fails on h2"
tb_exec h2 rm -f /run/vmig/fail-restore
back_on_h1 2
serving 2 h1 h2 h3

fi
# ------------------------------------------------------------- 3. peer host silent
if want 3; then
sleep 10
tb_exec h3 sh -c 'kill -STOP $(cat /run/vmig/migrd.pid)'
attempt 3 setup "10\.77\.0\.3|h3" "h3's migrd stopped"
tb_exec h3 sh -c 'kill -CONT $(cat /run/vmig/migrd.pid)'
back_on_h1 3
serving 3 h1 h2 h3

fi
# ------------------------------------------------------------- 4. drain times out
if want 4; then
sleep 10
nft=$SRC/tests/testbed/nft.py
d=$(script drain.sh <<EOT
#!/bin/bash
# RoCE from h3 dropped here while rs-a migrates: its sends stay
# unacknowledged, its drain cannot finish. Input only: rxe retries a send
# that the output hook refuses at once, in a loop that starves this host.
$nft 'add table inet vmigtest
add chain inet vmigtest in { type filter hook input priority 0; }
add rule inet vmigtest in ip saddr 10.77.0.3 udp dport 4791 drop' || { echo "nft failed"; exit 2; }
vmigrate rs-a h2
rc=\$?
$nft 'delete table inet vmigtest'
exit \$rc
EOT
)
t0=$(date +%s)
tb_exec h1 "$d" > "$W/move-4.out" 2>&1
rc=$?
tail -n 4 "$W/move-4.out" | diag
[ "$rc" != 0 ] && [ "$rc" != 2 ]
ok $? "4: vmigrate rs-a h2 fails (RoCE from h3 dropped on h1): exit $rc after $(($(date +%s) - t0)) s"
tb_exec h1 vmigrate --json status rs-a > "$W/status-4.json" 2>&1
desc=$(jq -r '."error-desc" // ""' "$W/status-4.json" 2>/dev/null)
echo "status $(jq -r .status "$W/status-4.json"), failed-phase $(jq -r '."failed-phase"' "$W/status-4.json"): $desc" | diag
[ "$(jq -r .status "$W/status-4.json")" = failed ] &&
	[ "$(jq -r '."failed-phase"' "$W/status-4.json")" = suspend ]
ok $? "4: query-migrate: status failed in phase suspend"
echo "$desc" | grep -q "drain not finished" && echo "$desc" | grep -q "the guest runs on the source"
ok $? "4: the reason names the drain timeout and says the guest runs on the source"
back_on_h1 4
serving 4 h1 h2 h3

fi
# ------------------------------------------------------------- the verdict
wait $cp
wait $sp
src=$?
stress_verdicts $((SECS + 300))
crc=$CRC
# One run in seven (2026-11-26) ended with atomic_bad=1 on the client and
# nothing else wrong. The cause is rxe in Linux 6.1 (Debian 6.1.192-2), not
# ours: an atomic completes with IBV_WC_SUCCESS but its result is never
# written into the local buffer (the peer executed it once: its words are
# right). After case 4's blackout the requester retransmits from its oldest
# unacknowledged WR. The responder answers a duplicate SEND or WRITE with a
# plain ACK carrying the PSN of the last request it executed
# (duplicate_request(): send_ack(qp, AETH_ACK_UNLIMITED, prev_psn),
# prev_psn = resp.ack_psn - 1, rxe_resp.c); when that request is an atomic
# whose ATOMIC ACKNOWLEDGE was dropped and the atomic is the completer's
# oldest WQE, check_psn() hands the ACK to check_ack(), which returns
# COMPST_WRITE_SEND for any RC_ACKNOWLEDGE, and COMPST_WRITE_SEND completes
# the WQE (COMPST_COMP_ACK) since the PSN is its last_psn: do_atomic()
# never runs (rxe_comp.c). qib and hfi1 retry instead: only an ATOMIC
# ACKNOWLEDGE may complete an atomic (qib_rc.c do_rc_ack()). A SEND or a
# WRITE then a CAS posted during a blackout hit it every time, a CAS alone
# never (t-atomic-ack.sh). With rdma_stress's order (SEND, WRITE, READ,
# FAA, CAS) a duplicate's ACK must come when the FAA is complete and the
# CAS is not, which (we think) takes overlapping retransmissions: rare, 0
# in 65 blackouts without migrd or the shim. rdma_stress poisons the result
# buffer and counts such fetches as atomic_unwritten: a TODO when every
# atomic_bad is one of those and nothing else is wrong.
todo=
if [ "$(wc -l < "$W/verdicts")" = 2 ] && grep -q "atomic_bad=[1-9]" "$W/verdicts" &&
   ! grep -qE "(lost|duplicated|reordered|corrupted|errors)=[1-9]" "$W/verdicts" &&
   ! sed 's/.* atomic_bad=\([0-9]*\) .* atomic_unwritten=\([0-9]*\) .*/\1 \2/' "$W/verdicts" |
	awk '$1 != $2 { bad = 1 } END { exit !bad }'; then
	todo=" # TODO atomic_bad only, all unwritten fetches: rxe 6.1 completes an atomic on a plain ACK"
fi
ok $((crc | src)) "both ends finished (client verdict $crc, server rc $src)$todo"
grep -q "result=ok" "$W/rs-a.log" && grep -q "result=ok" "$W/rs-b.log"
ok $? "rdma_stress: zero lost, duplicated, reordered or corrupted messages$todo"
[ $((crc | src)) = 0 ] || { grep -v progress "$W/rs-a.log" | tail -n 20 | diag;
	grep -v progress "$W/rs-b.log" | tail -n 20 | diag;
	tail -n 30 "$W/migrd-h1.log" | diag; tail -n 30 "$W/migrd-h2.log" | diag; }
for h in h1 h2 h3; do tb_exec "$h" sh -c 'kill $(cat /run/vmig/migrd.pid)'; done
t_done
