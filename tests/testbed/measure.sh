#!/usr/bin/env bash
# The testbed's figures: boot time of one host and of three at once, exec
# round trip, ib_write_bw between two hosts. Prints one line per figure.
#   tests/testbed/measure.sh [EXEC_ROUNDS] [BW_ITERS]
set -uo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=${1:-20}
ITERS=${2:-2000}
SIZE=65536
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), qemu processes already running: $(pgrep -c qemu-system || true)"
echo "# accelerator: $("$TB_SH" accel)"

t=$(now)
tb_up 1 2>/dev/null
echo "boot 1 host: $(since "$t") s (testbed.sh up 1, until rxe0 ACTIVE and the exec loop runs)"

t=$(now)
for i in $(seq "$ROUNDS"); do tb_exec h1 true || tb_fail "exec failed"; done
echo "exec round trip: $(awk -v s="$(since "$t")" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s * 1000 / n }') ms (mean of $ROUNDS x 'testbed.sh exec h1 -- true')"
t=$(now)
for i in $(seq 4); do tb_exec h1 true & done
wait
echo "4 exec at once: $(since "$t") s"
tb_down
rm -rf "$VMIG_TESTBED_DIR"

t=$(now)
tb_up 3 2>/dev/null
echo "boot 3 hosts at once: $(since "$t") s (testbed.sh up 3)"

tb_exec h1 ib_write_bw -d rxe0 -x 1 -u 18 -s $SIZE -n "$ITERS" -F >"$(tb_scratch h1)/bw.log" 2>&1 &
srv=$!
tb_wait_port h1 18515 120 || tb_fail "no ib_write_bw server"
out=$(tb_exec h2 bash -c 't0=$(date +%s%N); ib_write_bw "$@"; rc=$?; t1=$(date +%s%N); echo "wall_ns $((t1 - t0))"; exit $rc' \
	bw -d rxe0 -x 1 -u 18 -s $SIZE -n "$ITERS" -F "$(tb_addr h1)") || tb_fail "ib_write_bw failed: $out"
tb_wait_bg "$srv" 120 || tb_fail "ib_write_bw server failed"
res=$(awk -v s=$SIZE '$1 == s && NF >= 5 { print $4; exit }' <<<"$out")
wall=$(awk '$1 == "wall_ns" { print $2 }' <<<"$out")
echo "ib_write_bw h2 -> h1 ($SIZE B x $ITERS, RC RDMA WRITE): $res MB/s by perftest;" \
	"$(awk -v b=$((SIZE * ITERS)) -v w="$wall" 'BEGIN { printf "%.1f", b / (w / 1e9) / 1e6 }') MB/s by wall clock including connection setup"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
