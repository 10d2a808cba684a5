#!/bin/bash
# Unmodified rdma-core and perftest programs run under vmig-run on both
# ends (server on h1, client on h2): rc/ud/srq pingpong, rc pingpong
# sleeping on completion events (-e), ib_write_bw, ib_send_bw, ib_read_lat,
# and librdmacm's rping and rdma_server/rdma_client.
. "$(dirname "$0")/common.sh"
tb_need 2

# pair NAME PORT SERVER-CMD CLIENT-CMD: server on h1 listening on PORT,
# client on h2 (to 10.77.0.1)
pair() {
	local name=$1 port=$2 srv=$3 cli=$4 s c
	s=$(script "$name-srv.sh" <<EOT
#!/bin/bash
exec timeout 240 vmig-run --no-ns --guest tsrv -- $srv
EOT
)
	c=$(script "$name-cli.sh" <<EOT
#!/bin/bash
exec timeout 200 vmig-run --no-ns --guest tcli -- $cli
EOT
)
	tb_exec h1 "$s" > "$W/$name-srv.out" 2>&1 &
	local sp=$!
	listening h1 "$port" > "$W/$name-listen.out" 2>&1 || diag < "$W/$name-listen.out"
	tb_exec h2 "$c" > "$W/$name-cli.out" 2>&1
	local crc=$?
	wait $sp
	local src=$?
	ok $((crc | src)) "$name under the shim (server rc $src, client rc $crc)"
	if [ $((crc | src)) != 0 ]; then
		diag < "$W/$name-srv.out"
		diag < "$W/$name-cli.out"
	else
		grep -h -E "iters|bytes|BW|usec|[0-9]+ +[0-9.]+ +[0-9.]+" "$W/$name-cli.out" | tail -n 2 | diag
	fi
}

pair rc_pingpong 18515 "ibv_rc_pingpong -d rxe0 -g 1 -n 20" "ibv_rc_pingpong -d rxe0 -g 1 -n 20 10.77.0.1"
pair rc_pingpong_events 18515 "ibv_rc_pingpong -d rxe0 -g 1 -n 20 -e" "ibv_rc_pingpong -d rxe0 -g 1 -n 20 -e 10.77.0.1"
pair ud_pingpong 18515 "ibv_ud_pingpong -d rxe0 -g 1 -n 20" "ibv_ud_pingpong -d rxe0 -g 1 -n 20 10.77.0.1"
pair srq_pingpong 18515 "ibv_srq_pingpong -d rxe0 -g 1 -n 20 -q 4" "ibv_srq_pingpong -d rxe0 -g 1 -n 20 -q 4 10.77.0.1"
pair ib_write_bw 18515 "ib_write_bw -d rxe0 -x 1 -F -n 200 -s 4096" "ib_write_bw -d rxe0 -x 1 -F -n 200 -s 4096 10.77.0.1"
pair ib_send_bw 18515 "ib_send_bw -d rxe0 -x 1 -F -n 200 -s 4096" "ib_send_bw -d rxe0 -x 1 -F -n 200 -s 4096 10.77.0.1"
pair ib_read_lat 18515 "ib_read_lat -d rxe0 -x 1 -F -n 20" "ib_read_lat -d rxe0 -x 1 -F -n 20 10.77.0.1"
pair rping 7174 "rping -s -a 10.77.0.1 -C 5 -v" "rping -c -a 10.77.0.1 -C 5 -v"
pair rdma_server 7471 "rdma_server -s 10.77.0.1 -p 7471" "rdma_client -s 10.77.0.1 -p 7471"
t_done
