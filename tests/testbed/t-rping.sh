#!/usr/bin/env bash
# rping (librdmacm, unmodified) between h1 and h2: RDMA CM connection
# setup and RDMA READ/WRITE ping-pong with -V (each payload verified).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

COUNT=${TB_RPING_COUNT:-20}
PORT=7174
tb_up 2
a1=$(tb_addr h1)
log=$(tb_scratch h1)/server.log

tb_exec h1 rping -s -a "$a1" -p $PORT -C "$COUNT" -S 256 -V -v >"$log" 2>&1 &
srv=$!
tb_wait_rdma_listen h1 $PORT 120 || tb_fail "rping server did not listen"
out=$(tb_exec h2 rping -c -a "$a1" -p $PORT -C "$COUNT" -S 256 -V -v 2>&1)
crc=$?
tb_wait_bg "$srv" 120
src=$?
echo "$out" | sed "s/^/# client: /" | cut -c1-100 | head -n 5
sed "s/^/# server: /" "$log" | cut -c1-100 | head -n 5

tb_ok "client exits 0" [ "$crc" = 0 ]
tb_ok "server exits 0" [ "$src" = 0 ]
tb_ok "client did $COUNT verified pings" [ "$(grep -c '^ping data: rdma-ping-' <<<"$out")" = "$COUNT" ]
tb_ok "server saw $COUNT pings" [ "$(grep -c '^server ping data: rdma-ping-' "$log")" = "$COUNT" ]
tb_ok "no verify failure" bash -c "! grep -qi 'verify\|fail\|error' '$log' <<<\"\$0\"" "$out"
tb_done
