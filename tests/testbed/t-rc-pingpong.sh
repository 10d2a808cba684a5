#!/usr/bin/env bash
# ibv_rc_pingpong (rdma-core, unmodified) between h1 and h2 over rxe0, with
# -c: every received buffer is checked against the expected pattern.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

ITERS=${TB_PINGPONG_ITERS:-100}
SIZE=4096
PORT=18515
tb_up 2
log=$(tb_scratch h1)/server.log

tb_exec h1 ibv_rc_pingpong -d rxe0 -g 1 -p $PORT -n "$ITERS" -s $SIZE -c >"$log" 2>&1 &
srv=$!
tb_wait_port h1 $PORT 120 || tb_fail "ibv_rc_pingpong server did not listen"
out=$(tb_exec h2 ibv_rc_pingpong -d rxe0 -g 1 -p $PORT -n "$ITERS" -s $SIZE -c "$(tb_addr h1)" 2>&1)
crc=$?
tb_wait_bg "$srv" 120
src=$?
echo "$out" | sed 's/^/# client: /'
sed 's/^/# server: /' "$log"

tb_ok "client exits 0" [ "$crc" = 0 ]
tb_ok "server exits 0" [ "$src" = 0 ]
want="$((ITERS * SIZE * 2)) bytes in"
tb_ok "client moved $ITERS x $SIZE B both ways" grep -q "^$want" <<<"$out"
tb_ok "server moved $ITERS x $SIZE B both ways" grep -q "^$want" "$log"
tb_ok "client used RoCE GIDs on the segment" grep -q 'remote address: .*GID ::ffff:10.77.0.1' <<<"$out"
tb_ok "no data mismatch reported" bash -c "! grep -qi 'mismatch\|error' '$log' <<<\"\$0\"" "$out"
tb_done
