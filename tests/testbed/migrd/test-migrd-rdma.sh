#!/bin/bash
# Live migration of a running RDMA process guest (TAP), issue 5's main
# case: rdma_stress runs between guest rs-a on h1 and guest rs-b on h3,
# both under the shim in their own PID and network namespaces
# (vmig-run --guest); `vmigrate rs-a h2` moves the h1 end to h2 with real
# CRIU while the traffic runs, then `vmigrate rs-a h1` brings it back. The
# peer on h3 is drained, reset and reconnected by its migrd each time.
# rdma_stress must finish with zero lost, duplicated, reordered or
# corrupted messages; query-migrate must report every phase and the
# downtime. Then an unmodified ib_send_bw (guest sb-a on h1, sb-b on h3,
# both under vmig-run) has its h1 end moved to h2 mid-run and must finish
# correctly on both ends.
. "$(dirname "$0")/common.sh"
tb_need 3
SECS=${VMIG_RDMA_MIG_SECS:-120}

migrd_conf "$W/migrd.conf" 3
migrd_start h1 h2 h3

# Each guest's address routed through its host on the other hosts.
guest_route rs-b h3 10.78.1.2
guest_route rs-a h1 10.78.1.1
guest_route sb-a h1 10.78.2.1
guest_route sb-b h3 10.78.2.2

s=$(script srv.sh <<EOT
#!/bin/bash
exec vmig-run --guest rs-b --addr 10.78.1.2 -- rdma_stress -d rxe0 --timeout 600
EOT
)
c=$(script cli.sh <<EOT
#!/bin/bash
sleep 8
exec vmig-run --guest rs-a --addr 10.78.1.1 -- rdma_stress -d rxe0 -t $SECS -q 2 --ops send,write,read,atomic --pause-ms 5 10.78.1.2
EOT
)
# move HOST-FROM HOST-TO [GUEST]: vmigrate on the source, its JSON status
move() {
	local from=$1 to=$2 g=${3:-rs-a} rc
	tb_exec "$from" vmigrate "$g" "$to" > "$W/move-$g-$to.out" 2>&1
	rc=$?
	tail -n 3 "$W/move-$g-$to.out" | diag
	ok $rc "vmigrate $g $to (from $from) completed"
	tb_exec "$from" vmigrate --json status "$g" > "$W/status-$to.json" 2>&1
	grep -E '"(status|downtime-ms|total-time-ms|setup|suspend|teardown|dump|transfer|restore|reconnect|resume)"' \
		"$W/status-$to.json" | tr -d ' \n' | diag
	echo | diag
	for p in setup suspend teardown dump transfer restore reconnect resume downtime-ms; do
		grep -q "\"$p\"" "$W/status-$to.json" || { echo "no $p" | diag; return 1; }
	done
}
if [ -z "${VMIG_MIG_ONLY_SENDBW:-}" ]; then	# (debugging part 2 alone)
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
sleep 10
move h1 h2
ok $? "query-migrate reports every phase and the downtime (h1 -> h2)"
sleep 10
move h2 h1
ok $? "query-migrate reports every phase and the downtime (h2 -> h1)"

# vmig-run on h1 returned when its guest was checkpointed away; the guest
# ends back on h1: its log there has the verdict when rdma_stress exits
wait $cp
wait $sp
src=$?
stress_verdicts $((SECS + 300))
crc=$CRC
ok $((crc | src)) "both ends finished (client verdict $crc, server rc $src)"
grep -q "result=ok" "$W/rs-a.log" && grep -q "result=ok" "$W/rs-b.log"
ok $? "rdma_stress: zero lost, duplicated, reordered or corrupted messages"
[ $((crc | src)) = 0 ] || { tail -n 20 "$W/rs-a.log" | diag; tail -n 20 "$W/rs-b.log" | diag;
	tail -n 30 "$W/migrd-h1.log" | diag; tail -n 30 "$W/migrd-h2.log" | diag; }
fi

# ib_send_bw, unmodified, both ends under vmig-run; the server end moves.
# iterations, not -D: perftest's duration mode counts what completes in
# its sampling window, which a migration can swallow whole
BW="ib_send_bw -d rxe0 -x 1 -F -n ${VMIG_SENDBW_ITERS:-30000} -s 1024"
s=$(script bw-srv.sh <<EOT
#!/bin/bash
exec vmig-run --guest sb-a --addr 10.78.2.1 -- $BW
EOT
)
c=$(script bw-cli.sh <<EOT
#!/bin/bash
exec vmig-run --guest sb-b --addr 10.78.2.2 -- $BW 10.78.2.1
EOT
)
tb_exec h1 "$s" > "$W/bw-srv.out" 2>&1 &
sp=$!
up=0
for i in $(seq 120); do
	tb_exec h1 vmigrate list 2>/dev/null | grep -q '^sb-a ' && { up=1; break; }
	sleep 1
done
ok $((1 - up)) "guest sb-a (ib_send_bw server) registered with migrd on h1"
# the client starts once the server listens in its guest's netns
listening h1 18515 ib_send_bw > "$W/bw-listen.out" 2>&1 || diag < "$W/bw-listen.out"
tb_exec h3 "$c" > "$W/bw-cli.out" 2>&1 &
cp=$!
# about 5 s of traffic (of ~12 s in all) before the move
sleep 5
move h1 h2 sb-a
wait $sp
wait $cp
crc=$?
srv=1
# the moved server's report is in its log on h2 once it ends there
for i in $(seq 200); do
	tb_exec h2 cat /run/vmig/guests/sb-a.log > "$W/sb-a.log" 2>&1
	grep -q "^ 1024 " "$W/sb-a.log" && break
	tb_exec h2 vmig-guest list 2>/dev/null | grep -q "^sb-a  *running" || break
	sleep 2
done
tb_exec h3 cat /run/vmig/guests/sb-b.log > "$W/sb-b.log" 2>&1
grep -A1 "#bytes" "$W/sb-a.log" "$W/sb-b.log" | diag
grep -q "^ 1024  *${VMIG_SENDBW_ITERS:-30000} " "$W/sb-a.log" &&
	grep -q "^ 1024  *${VMIG_SENDBW_ITERS:-30000} " "$W/sb-b.log" && srv=0
ok $((crc | srv)) "ib_send_bw finished correctly on both ends (client rc $crc, moved server's report $srv)"
[ $((crc | srv)) = 0 ] || { tail -n 15 "$W/sb-a.log" | diag; tail -n 15 "$W/sb-b.log" | diag; }

for h in h1 h2 h3; do tb_exec "$h" pkill -x migrd; done
t_done
