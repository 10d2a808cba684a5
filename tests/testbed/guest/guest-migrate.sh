#!/usr/bin/env bash
# Process guests on the Soft-RoCE testbed, without RDMA (TAP):
#  - a guest on h1 with its own address, reachable from h2 over TCP;
#  - bad input refused with clear errors, nothing left behind;
#  - checkpoint on h1 while a client in h1's host netns holds a TCP
#    connection to it, the images streamed h1 -> h2 over TCP (tar | socat,
#    not the shared 9p filesystem), restore on h2 with the same address
#    while another guest there uses the same pids, routes updated: the
#    connection survives and the server's per-connection counter goes on
#    without loss; PID 1 of the guest and the server's pid are preserved;
#  - stop leaves no veth, route or state behind.
# Boots its own two hosts through tests/testbed/lib.sh (tb_up: a fresh state
# directory, downed at exit); VMIG_TB_REUSE=1 with VMIG_TESTBED_DIR uses
# hosts already up there and leaves them up.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VMIG_SRC=${VMIG_SRC:-$(cd "$HERE/../../.." && pwd)}
VMIG_BUILD_DIR=${VMIG_BUILD_DIR:-$VMIG_SRC/build}
export VMIG_SRC VMIG_BUILD_DIR
. "$VMIG_SRC/tests/testbed/lib.sh"
GUEST=$VMIG_BUILD_DIR/tools/vmig-guest
COUNT=$VMIG_BUILD_DIR/tests/testbed/guest/tcpcount
H1=10.77.0.1 H2=10.77.0.2 PORT=7000 XPORT=7100

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
diag() { sed 's/^/# /'; }
bail() { echo "Bail out! $*"; exit 1; }

# tbx HOST SCRIPT: runs SCRIPT with bash on HOST; the 9p root is cached
# (cache=loose), so drop the caches first or a rebuilt binary goes unseen.
tbx() {
	local h=$1
	shift
	tb_exec_t "${TBX_TIMEOUT:-900}" "$h" bash -c \
		"sync; echo 3 > /proc/sys/vm/drop_caches; G=$GUEST; C=$COUNT; $*"
}

command -v qemu-system-x86_64 >/dev/null || { echo "1..0 # SKIP no qemu-system-x86_64"; exit 0; }
for f in "$GUEST" "$COUNT"; do
	[ -x "$f" ] || bail "$f is not built"
done
echo "1..12"
tb_up 2 # on failure it says why on stderr and exits 1

# --- 1: a guest on h1
out=$(tbx h1 '$G stop g1 >/dev/null 2>&1; $G stop g2 >/dev/null 2>&1
	pid=$($G start g1 -- $C server '$PORT') || exit 1
	echo "init $pid"
	$G list
	grep -E "^NSpid" /proc/$pid/status
	addr=$(sed -n "s/.*\"address\": \"\([0-9.]*\)\/.*/\1/p" /run/vmig/guests/g1.json)
	echo "addr $addr"
	ip -br link show vg-g1 && ip route show $addr
	nsenter -t $pid -n ip -br addr show eth0
	nsenter -t $pid -n ip route' 2>&1)
echo "$out" | diag
ADDR=$(echo "$out" | sed -n 's/^addr //p')
if echo "$out" | grep -q 'NSpid:.*[[:space:]]1$' && [ -n "$ADDR" ] &&
	echo "$out" | grep -q "^eth0.*$ADDR/32" &&
	echo "$out" | grep -q "default via 169.254.78.1 dev eth0"; then
	ok "guest g1 on h1: PID 1 of its pid ns, $ADDR on its eth0, default via the host"
else
	not_ok "guest g1 on h1"
fi

# --- 2: reachable from h2 over TCP
out=$(tbx h2 '$G route g1 '$H1' && ip route show '$ADDR' && $C client '$ADDR' '$PORT' --count 5' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q '^ok replies=5'; then
	ok "h2 reaches g1 over TCP through h1 (vmig-guest route g1 $H1)"
else
	not_ok "h2 reaches g1 over TCP"
fi

# --- 3: bad input
out=$(tbx h1 'for args in "start BAD_NAME -- true" "start waytoolongname1 -- true" \
		"start g3 --addr 300.1.1.1 -- true" "start g3 --addr 10.78.0.0/24 -- true" \
		"start g1 -- true" "start g3 --addr '$ADDR' -- true" "start g3 -- /nonexistent" \
		"stop nosuch" "route g1 '$H2'" "checkpoint nosuch /tmp/x" "restore g3 /nonexistent"; do
		if $G $args > /dev/null 2> /tmp/err; then echo "ACCEPTED: $args"; else echo "$args => $(cat /tmp/err)"; fi
	done
	echo "left: $(ls /run/vmig/guests/ | grep -v -e g1.json -e g1.log | tr "\n" " ")"
	ip -br link | grep -c "^vg-"' 2>&1)
echo "$out" | diag
if ! echo "$out" | grep -q ACCEPTED && echo "$out" | grep -q '^left: $' &&
	[ "$(echo "$out" | tail -n 1)" = 1 ]; then
	ok "bad names, addresses, duplicates, a missing command are refused; nothing left behind"
else
	not_ok "bad input refused cleanly"
fi

# --- 4: checkpoint on h1 with a live client in h1's host netns
out=$(tbx h1 'rm -rf /tmp/ck /tmp/cl.*
	setsid -f bash -c "echo \$\$ > /tmp/cl.pid; exec $C client '$ADDR' '$PORT' --interval-ms 200 --timeout 600 \
		--stop-file /tmp/cl.stop --progress-file /tmp/cl.prog > /tmp/cl.out 2>&1"
	for i in $(seq 300); do [ "$(cat /tmp/cl.prog 2>/dev/null || echo 0)" -ge 10 ] && break; sleep 0.2; done
	echo "replies before: $(cat /tmp/cl.prog)"
	t0=$(date +%s.%N)
	$G checkpoint g1 /tmp/ck || { tail -n 20 /tmp/ck/dump.log; exit 1; }
	echo "checkpoint took $(awk -v a=$t0 -v b=$(date +%s.%N) "BEGIN { printf \"%.1f\", b - a }")s"
	echo "replies at dump: $(cat /tmp/cl.prog)"
	$G list
	echo "veths: $(ip -br link | grep -c "^vg-")"
	ls /tmp/ck | tr "\n" " "; echo
	du -sh /tmp/ck
	(cd /tmp/ck && find . -type f | sort | xargs sha256sum) > /tmp/ck.sums' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q 'g1 *away' && echo "$out" | grep -q 'tcp-stream' &&
	echo "$out" | grep -q '^veths: 0'; then
	ok "checkpoint of g1 on h1 (tcp-stream image, guest gone from h1)"
else
	not_ok "checkpoint of g1 on h1"
fi

# --- 5: stream the images h1 -> h2 over TCP
tbx h2 'rm -rf /tmp/img /tmp/img.done; mkdir -p /tmp/img
	setsid -f bash -c "socat -u TCP-LISTEN:'$XPORT',reuseaddr - | tar x -C /tmp/img && touch /tmp/img.done"' >/dev/null 2>&1
out=$(tbx h1 'tar c -C /tmp/ck . | socat -u - TCP:'$H2':'$XPORT',retry=120,interval=1 && echo sent' 2>&1)
echo "$out" | diag
out2=$(tbx h2 'for i in $(seq 600); do [ -e /tmp/img.done ] && break; sleep 0.2; done
	(cd /tmp/img && find . -type f | sort | xargs sha256sum)' 2>&1)
sums1=$(tbx h1 'cat /tmp/ck.sums' 2>&1)
if echo "$out" | grep -q '^sent' && [ -n "$sums1" ] && [ "$sums1" = "$out2" ]; then
	ok "images streamed h1 -> h2 over TCP ($(echo "$sums1" | wc -l) files, checksums equal)"
else
	echo "$out2" | diag
	not_ok "images streamed h1 -> h2"
fi

# --- 6: restore on h2 next to another guest using the same pids
out=$(tbx h2 '$G stop g1 > /dev/null 2>&1
	g2=$($G start g2 -- $C server '$PORT') || exit 1
	sleep 1
	echo "g2 init: $(grep NSpid /proc/$g2/status)"
	echo "g2 server: $(grep NSpid /proc/$(pgrep -P $g2 tcpcount)/status)"
	t0=$(date +%s.%N)
	pid=$($G restore g1 /tmp/img) || { tail -n 30 /tmp/img/restore.log; exit 1; }
	echo "restore took $(awk -v a=$t0 -v b=$(date +%s.%N) "BEGIN { printf \"%.1f\", b - a }")s"
	echo "g1 init: $(grep NSpid /proc/$pid/status)"
	echo "g1 server: $(grep NSpid /proc/$(pgrep -P $pid tcpcount)/status)"
	$G list
	ip route show '$ADDR'' 2>&1)
echo "$out" | diag
tbx h1 '$G route g1 '$H2' && ip route show '$ADDR'' 2>&1 | diag
g1srv=$(echo "$out" | sed -n 's/^g1 server: NSpid:[[:space:]]*[0-9]*[[:space:]]*//p')
g2srv=$(echo "$out" | sed -n 's/^g2 server: NSpid:[[:space:]]*[0-9]*[[:space:]]*//p')
if echo "$out" | grep -q '^g1 init: NSpid:.*[[:space:]]1$' && [ -n "$g1srv" ] &&
	[ "$g1srv" = "$g2srv" ] && echo "$out" | grep -q "dev vg-g1"; then
	ok "restore of g1 on h2: init is PID 1 again, server pid $g1srv in its ns while g2's server has the same pid"
else
	not_ok "restore of g1 on h2"
fi

# --- 7: the connection survived
out=$(tbx h1 'b=$(cat /tmp/cl.prog)
	for i in $(seq 1500); do [ "$(cat /tmp/cl.prog)" -ge $((b + 20)) ] && break; sleep 0.2; done
	echo "replies after restore: $(( $(cat /tmp/cl.prog) - b ))"
	kill -0 $(cat /tmp/cl.pid) && echo "client runs"
	cat /tmp/cl.out' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q '^client runs' && ! echo "$out" | grep -q '^replies after restore: 0$'; then
	ok "the TCP connection from h1 survived the move h1 -> h2: replies go on, in order"
else
	not_ok "the TCP connection survived the move h1 -> h2"
fi

# --- 8: back to h1 with a pre-copy round: pre-dump while it serves, then
# the final dump on top of it; the chain streamed h2 -> h1
tbx h1 'rm -rf /tmp/img2 /tmp/img2.done; mkdir -p /tmp/img2
	setsid -f bash -c "socat -u TCP-LISTEN:'$XPORT',reuseaddr - | tar x -C /tmp/img2 && touch /tmp/img2.done"' >/dev/null 2>&1
out=$(tbx h2 'rm -rf /tmp/ck2; mkdir -p /tmp/ck2
	$G pre-dump g1 /tmp/ck2/1 || { tail -n 20 /tmp/ck2/1/pre-dump.log; exit 1; }
	echo "pre-dump: $(du -sk /tmp/ck2/1 | cut -f1) KiB"
	$G checkpoint g1 /tmp/ck2/2 --parent ../1 || { tail -n 20 /tmp/ck2/2/dump.log; exit 1; }
	echo "dump: $(du -sk /tmp/ck2/2 | cut -f1) KiB, parent $(readlink /tmp/ck2/2/parent)"
	tar c -C /tmp/ck2 . | socat -u - TCP:'$H1':'$XPORT',retry=120,interval=1 && echo sent' 2>&1)
echo "$out" | diag
out2=$(tbx h1 'for i in $(seq 600); do [ -e /tmp/img2.done ] && break; sleep 0.2; done
	pid=$($G restore g1 /tmp/img2/2) || { tail -n 30 /tmp/img2/2/restore.log; exit 1; }
	echo "g1 init: $(grep NSpid /proc/$pid/status)"
	ip route show '$ADDR'' 2>&1)
echo "$out2" | diag
tbx h2 '$G route g1 '$H1' && ip route show '$ADDR'' 2>&1 | diag
out3=$(tbx h1 'b=$(cat /tmp/cl.prog)
	for i in $(seq 1500); do [ "$(cat /tmp/cl.prog)" -ge $((b + 10)) ] && break; sleep 0.2; done
	touch /tmp/cl.stop
	for i in $(seq 100); do kill -0 $(cat /tmp/cl.pid) 2> /dev/null || break; sleep 0.2; done
	echo "replies after coming back: $(( $(cat /tmp/cl.prog) - b ))"
	cat /tmp/cl.out' 2>&1)
echo "$out3" | diag
if echo "$out" | grep -q '^sent' && echo "$out2" | grep -q "dev vg-g1" &&
	echo "$out3" | grep -q '^ok replies=' &&
	! echo "$out3" | grep -q '^replies after coming back: 0$'; then
	ok "back to h1 with a pre-dump round; one connection across both moves, counter without loss ($(grep '^ok' <<<"$out3"))"
else
	not_ok "back to h1 with a pre-dump round"
fi

# --- 9: the guest serves new connections at its address, from h2
out=$(tbx h2 '$C client '$ADDR' '$PORT' --count 3' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q '^ok replies=3'; then
	ok "new connections from h2 reach g1 back on h1 (h2 routes via h1)"
else
	not_ok "new connections reach g1 back on h1"
fi

# --- 10: vmig-guest run (vmig_guest_run, what vmig-run calls): the command's
# status, SIGTERM forwarded, checkpointed away, nothing left behind
out=$(tbx h1 '$G run g4 -- sh -c "exit 7"; echo "exit rc=$?"
	$G run g5 -- sleep 1000 & sleep 4; kill -TERM $!; wait $!; echo "term rc=$?"
	rm -rf /tmp/ck6; ($G run g6 -- sleep 1000; echo "moved rc=$?" > /tmp/run6.rc) &
	sleep 4; $G checkpoint g6 /tmp/ck6 && echo checkpointed
	for i in $(seq 100); do [ -e /tmp/run6.rc ] && break; sleep 0.2; done; cat /tmp/run6.rc
	$G stop g6
	echo "left: veths=$(ip -br link | grep "^vg-" | grep -vc "^vg-g1@") states=$(ls /run/vmig/guests/ | grep json | grep -v "^g1\.json" | wc -l)"' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q '^exit rc=7' && echo "$out" | grep -q '^term rc=143' &&
	echo "$out" | grep -q '^moved rc=0' && echo "$out" | grep -q '^left: veths=0 states=0'; then
	ok "vmig-guest run: exit status 7 passed on, SIGTERM forwarded (143), checkpointed away (0), nothing left"
else
	not_ok "vmig-guest run"
fi

# --- 11: the guest uses the RDMA device of its host: rxe works only in the
# initial netns, yet a process in the guest's netns can use it
# The server must listen before the client connects: a fixed sleep was not
# enough on a loaded CI machine (ibv_rc_pingpong's client does not retry).
tbx h2 '$G route g7 '$H1' && setsid -f bash -c "exec ibv_rc_pingpong -d rxe0 -g 1 -n 20 -s 1024 > /tmp/pp.out 2>&1"' > /dev/null 2>&1
tb_wait_port h2 18515 120 2>&1 | diag
out=$(tbx h1 '$G run g7 -- sh -c "ibv_rc_pingpong -d rxe0 -g 1 -n 20 -s 1024 '$H2' > /tmp/pp.out 2>&1"
	echo "rc=$?"; cat /tmp/pp.out' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q '^rc=0' && echo "$out" | grep -q 'iters in'; then
	ok "ibv_rc_pingpong from guest g7 on h1 over h1's rxe0 to h2 ($(grep -m1 'bytes in' <<<"$out"))"
else
	not_ok "RDMA from a guest over its host's rxe0"
	tbx h2 'echo "server on h2:"; cat /tmp/pp.out' 2>&1 | diag
fi

# --- 12: stop leaves nothing behind
out=$(tbx h2 '$G stop g1 && $G stop g2 && $G stop g7
	echo "h2: veths=$(ip -br link | grep -c "^vg-") routes=$(ip route | grep -c "^10\.78\.") states=$(ls /run/vmig/guests/ | grep -c json)"' 2>&1)
out+=$'\n'$(tbx h1 '$G stop g1
	echo "h1: veths=$(ip -br link | grep -c "^vg-") routes=$(ip route | grep -c "^10\.78\.") states=$(ls /run/vmig/guests/ | grep -c json)"' 2>&1)
out+=$'\n'$(tbx h2 '$G stop g1 2>&1; echo "h2 exit $?"' 2>&1)
echo "$out" | diag
if echo "$out" | grep -q '^h2: veths=0 routes=0 states=0' &&
	echo "$out" | grep -q '^h1: veths=0 routes=0 states=0' &&
	echo "$out" | grep -q "no guest 'g1' on this host"; then
	ok "stop leaves no veth, route or state file on either host"
else
	not_ok "stop leaves nothing behind"
fi

[ "$failed" = 0 ]
