#!/bin/bash
# Issue 4's migration loop: while ib_send_bw and rdma_stress run between h1
# and h2 under the shim, 10 `vmig-ctl cycle` of the h1 end complete (then 3
# under ibv_rc_pingpong sleeping on completion events) (the h2
# end is reset and reconnected through migrd's FORWARD), both runs finish
# correctly, and the physical QPNs and keys changed while the virtual ones
# the applications see did not.
. "$(dirname "$0")/common.sh"
CYCLES=${VMIG_SHIM_CYCLES:-10}
tb_need 2

# migrd on both hosts, one cluster key (the hosts share the state dir).
head -c 32 /dev/urandom > "$W/cluster.key"
chmod 600 "$W/cluster.key"
cat > "$W/migrd.conf" <<EOT
listen = 0.0.0.0
port = 7410
run_dir = /run/vmig
key_file = $W/cluster.key
forward_timeout_ms = 40000
connect_timeout_ms = 15000
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
EOT
m=$(script migrd.sh <<EOT
#!/bin/bash
pkill -x migrd; sleep 0.5
mkdir -p /run/vmig
migrd --config $W/migrd.conf --host \$(hostname) > $W/migrd-\$(hostname).log 2>&1
EOT
)
for h in h1 h2; do
	tb_exec "$h" "$m"
	ok $? "migrd started on $h"
done

# run NAME SERVER-CMD CLIENT-CMD [N]: server on h1 (the end that cycles),
# client on h2; cycles the server N (default CYCLES) times while they run.
# Every server here listens on TCP port 18515 (perftest's, the pingpongs'
# and rdma_stress's default).
run() {
	local name=$1 srv=$2 cli=$3 n=${4:-$CYCLES} port=18515 s c d
	s=$(script "$name-srv.sh" <<EOT
#!/bin/bash
VMIG_LOG_LEVEL=${VMIG_SHIM_LOG:-info} exec timeout 600 vmig-run --no-ns --guest $name-a -- $srv
EOT
)
	c=$(script "$name-cli.sh" <<EOT
#!/bin/bash
VMIG_LOG_LEVEL=${VMIG_SHIM_LOG:-info} exec timeout 600 vmig-run --no-ns --guest $name-b -- $cli
EOT
)
	d=$(script "$name-drive.sh" <<EOT
#!/bin/bash
sleep 15
pid=\$(pgrep -x ${srv%% *} | head -n 1)
vmig-ctl \$pid state > $W/$name-state-before.txt || exit 1
vmig-ctl \$pid cycle --count $n --timeout 30000 > $W/$name-cycles.txt 2>&1
rc=\$?
vmig-ctl \$pid state > $W/$name-state-after.txt
exit \$rc
EOT
)
	tb_exec h1 "$s" > "$W/$name-srv.out" 2>&1 &
	local sp=$!
	listening h1 "$port" > "$W/$name-listen.out" 2>&1 || diag < "$W/$name-listen.out"
	tb_exec h2 "$c" > "$W/$name-cli.out" 2>&1 &
	local cp=$!
	tb_exec h1 "$d" > "$W/$name-drive.out" 2>&1
	local drc=$?
	wait $sp; local src=$?
	wait $cp; local crc=$?
	ok $drc "$name: $n cycles of the h1 end completed"
	grep -E "^  (total|teardown|restore|reset-peer|reconnect)" "$W/$name-cycles.txt" | tail -n 5 | diag
	[ $drc = 0 ] || { diag < "$W/$name-cycles.txt"; diag < "$W/$name-drive.out"; }
	ok $((src | crc)) "$name finished correctly on both ends (rc $src/$crc)"
	[ $((src | crc)) = 0 ] || { tail -n 20 "$W/$name-srv.out" | diag; tail -n 20 "$W/$name-cli.out" | diag; }
	tail -n 4 "$W/$name-cli.out" | diag
	# virtual QPN the same, physical one different
	local vb pb va pa
	vb=$(awk '/local  qpn/ {print $4; exit}' "$W/$name-state-before.txt")
	pb=$(awk '/local  qpn/ {print $6; exit}' "$W/$name-state-before.txt")
	va=$(awk '/local  qpn/ {print $4; exit}' "$W/$name-state-after.txt")
	pa=$(awk '/local  qpn/ {print $6; exit}' "$W/$name-state-after.txt")
	[ -n "$vb" ] && [ "$vb" = "$va" ] && [ "$pb" != "$pa" ]
	ok $? "$name: virtual qpn $vb kept, physical $pb -> $pa"
	grep -q "lkey virt" "$W/$name-state-after.txt"
	ok $? "$name: the physical lkeys changed (virtual ones kept)"
	grep -m 2 "key virt" "$W/$name-state-after.txt" | diag
	grep "local  qpn" "$W/$name-state-after.txt" | head -n 2 | diag
}

[ -n "${VMIG_SHIM_ONLY_STRESS:-}" ] ||
run send_bw "ib_send_bw -d rxe0 -x 1 -F -D 100 -s 1024" \
	"ib_send_bw -d rxe0 -x 1 -F -D 100 -s 1024 10.77.0.1"
# Every op, UD datagrams too: the UD QPs are held and drained with the RC
# ones, and their datagrams follow the peer's new QPN.
run stress "rdma_stress -d rxe0 --timeout 500" \
	"rdma_stress -d rxe0 -t 100 -q 2 --ops ${VMIG_STRESS_OPS:-all} --pause-ms 5 10.77.0.1"
# Both ends asleep on completion channels (-e): the cycling end's thread
# waits in ibv_get_cq_event while its real channel and CQ are destroyed
# and made again; the armed CQ gets an event so that it polls again.
[ -n "${VMIG_SHIM_ONLY_STRESS:-}" ] ||
run rc_events "ibv_rc_pingpong -d rxe0 -g 1 -e -n 12000" \
	"ibv_rc_pingpong -d rxe0 -g 1 -e -n 12000 10.77.0.1" 3
tb_exec h1 pkill -x migrd
tb_exec h2 pkill -x migrd
t_done
