#!/usr/bin/env bash
# bench/run.sh (`./run bench`): boots its own two-host Soft-RoCE testbed and
# prints the figures of ../shared/DESIGN.md section 6 that can be measured
# today, each with its unit, then a summary table. It exits non-zero only
# when a measurement could not be made; it never judges a figure.
#
#   1. shim data-path cost: instructions per verb (callgrind, exact and
#      repeatable), plain and under the shim, and the difference
#   2. ib_write_bw / ib_send_lat h1 <-> h2, plain and with the shim on both
#      ends, alternated in one run, and the ratios shim/plain
#   3. `vmig-ctl PID cycle` step times for 1, 100 and 1000 QPs
#   4. migration time and downtime (not measured yet: see the line printed)
#
# Environment: VMIG_BENCH_ITERS (verbs_cost iterations, 200),
# VMIG_BENCH_ROUNDS (perftest plain/shim pairs, 2), VMIG_BENCH_QPS
# ("1 100 1000"), VMIG_BENCH_ONLY (a subset of "cost perf cycle migrate").
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${VMIG_BUILD_DIR:=$SRC/build}"
export VMIG_SRC=$SRC VMIG_BUILD_DIR
. "$SRC/tests/testbed/lib.sh"

ITERS=${VMIG_BENCH_ITERS:-200}
ROUNDS=${VMIG_BENCH_ROUNDS:-2}
QPS=${VMIG_BENCH_QPS:-1 100 1000}
ONLY=${VMIG_BENCH_ONLY:-cost perf cycle migrate}
CG=$SRC/bench/cg_costs.py

SUMMARY=()
MISSED=0

say() { printf '%s\n' "$*"; }
# row LABEL VALUE: one line of the summary table
row() { SUMMARY+=("$1|$2"); }
# missed WHAT REASON: a figure that could not be measured
missed() {
	say "NOT MEASURED: $1: $2"
	row "$1" "not measured: $2"
	MISSED=$((MISSED + 1))
}
# calc EXPR: awk arithmetic, one decimal
calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }
# calc3 EXPR: three decimals (ratios)
calc3() { awk "BEGIN { printf \"%.3f\", $1 }"; }
wants() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- 1. instructions per verb ---------------------------------------------

# cg NAME [vmig-run --] ARGS...: verbs_cost under callgrind in h1; the
# callgrind file is $CGD/NAME.out, the program's line $CGD/NAME.txt.
cg() {
	local name=$1
	shift
	tb_exec_t 900 h1 "$@" >"$CGD/$name.log" 2>&1
	local rc=$?
	grep '^verbs_cost ' "$CGD/$name.log" >"$CGD/$name.txt"
	[ $rc = 0 ] && [ -s "$CGD/$name.out" ] && [ -s "$CGD/$name.txt" ]
}

vg() {	# the valgrind command line for output NAME
	echo valgrind --tool=callgrind --collect-atstart=no \
		--toggle-collect=cost_post_send --toggle-collect=cost_post_recv \
		--toggle-collect=cost_poll --callgrind-out-file="$CGD/$1.out"
}

# per_call NAME FN: inclusive Ir per call of FN in NAME's profile
per_call() {
	"$CG" "$CGD/$1.out" "$2" |
		awk '{ split($2, c, "="); split($4, i, "=");
		       if (c[2] > 0) printf "%.1f", i[2] / c[2]; else print "?" }'
}
# self_per_call NAME FN: FN's own Ir per call
self_per_call() {
	"$CG" "$CGD/$1.out" "$2" |
		awk '{ split($2, c, "="); split($3, s, "=");
		       if (c[2] > 0) printf "%.1f", s[2] / c[2]; else print "?" }'
}

bench_cost() {
	say ""
	say "== 1. shim data-path cost (callgrind instructions, h1, $ITERS iterations)"
	CGD=$(tb_scratch h1)/cg
	mkdir -p "$CGD"
	local base=(verbs_cost -n "$ITERS" -w 20)
	# shellcheck disable=SC2046
	if ! cg write-plain $(vg write-plain) "${base[@]}"; then
		local why
		why=$(grep -m1 -iE 'error|valgrind:|fatal' "$CGD/write-plain.log")
		say "callgrind could not run verbs_cost: ${why:-see $CGD/write-plain.log}"
		tail -n 15 "$CGD/write-plain.log" | sed 's/^/  | /'
		if tb_exec h1 perf stat -e instructions:u true 2>&1 |
				grep -q 'not supported'; then
			missed "instructions per verb" \
				"valgrind failed and perf has no instruction counter in the TCG guest"
		else
			missed "instructions per verb" "valgrind failed (perf fallback not implemented)"
		fi
		return
	fi
	local ok=1
	# shellcheck disable=SC2046
	cg write-shim vmig-run -- $(vg write-shim) "${base[@]}" || ok=0
	# shellcheck disable=SC2046
	cg write-thread $(vg write-thread) "${base[@]}" --idle-thread || ok=0
	# shellcheck disable=SC2046
	cg send-plain $(vg send-plain) "${base[@]}" --send || ok=0
	# shellcheck disable=SC2046
	cg send-shim vmig-run -- $(vg send-shim) "${base[@]}" --send || ok=0
	if [ $ok = 0 ]; then
		local f
		for f in "$CGD"/*.log; do
			say "-- $(basename "$f"):"
			tail -n 8 "$f" | sed 's/^/  | /'
		done
		missed "instructions per verb (shim)" "a callgrind run failed (logs above)"
		return
	fi
	local n
	for n in write-plain write-shim write-thread send-plain send-shim; do
		say "  $n: $(cat "$CGD/$n.txt")"
		grep -q 'empty_polls=0 ' "$CGD/$n.txt" ||
			say "  ($n: some polls found no completion; per-poll figures include them)"
	done

	local ps_p ps_s ps_t pl_p pl_s rs_p rs_s ps_d pl_d rs_d sp sl sr
	ps_p=$(per_call write-plain cost_post_send)
	ps_s=$(per_call write-shim cost_post_send)
	ps_t=$(per_call write-thread cost_post_send)
	pl_p=$(per_call write-plain cost_poll)
	pl_s=$(per_call write-shim cost_poll)
	rs_p=$(per_call send-plain cost_post_recv)
	rs_s=$(per_call send-shim cost_post_recv)
	sp=$(self_per_call write-shim vmig_post_send)
	sl=$(self_per_call write-shim vmig_poll_cq)
	sr=$(self_per_call send-shim vmig_post_recv)
	ps_d=$(calc "$ps_s - $ps_p")
	pl_d=$(calc "$pl_s - $pl_p")
	rs_d=$(calc "$rs_s - $rs_p")
	local sps_p sps_s spl_p spl_s
	sps_p=$(per_call send-plain cost_post_send)
	sps_s=$(per_call send-shim cost_post_send)
	spl_p=$(per_call send-plain cost_poll)
	spl_s=$(per_call send-shim cost_poll)

	say ""
	printf '  %-34s %10s %10s %10s %12s\n' "Ir per call" plain shim added "shim's own"
	printf '  %-34s %10s %10s %10s %12s\n' "ibv_post_send (64 B RDMA WRITE)" \
		"$ps_p" "$ps_s" "$ps_d" "$sp"
	printf '  %-34s %10s %10s %10s %12s\n' "ibv_poll_cq (1 completion)" \
		"$pl_p" "$pl_s" "$pl_d" "$sl"
	printf '  %-34s %10s %10s %10s %12s\n' "ibv_post_send (64 B SEND)" \
		"$sps_p" "$sps_s" "$(calc "$sps_s - $sps_p")" ""
	printf '  %-34s %10s %10s %10s %12s\n' "ibv_poll_cq (SEND/RECV compl.)" \
		"$spl_p" "$spl_s" "$(calc "$spl_s - $spl_p")" ""
	printf '  %-34s %10s %10s %10s %12s\n' "ibv_post_recv (1 SGE)" \
		"$rs_p" "$rs_s" "$rs_d" "$sr"
	say "  plain with one idle thread: ibv_post_send $ps_t Ir" \
		"($(calc "$ps_t - $ps_p") Ir more than single-threaded: rxe rings its" \
		"doorbell with write(), whose libc wrapper takes the cancellation" \
		"path once a process has a second thread, and the shim starts one)"
	say "  added = shim - plain (all code under the verb); shim's own =" \
		"self instructions of vmig_post_send / vmig_poll_cq / vmig_post_recv"

	row "ibv_post_send added by the shim" "$ps_d Ir/call (shim's own code $sp Ir; plain $ps_p Ir)"
	row "ibv_poll_cq added by the shim" "$pl_d Ir/completion (shim's own code $sl Ir; plain $pl_p Ir)"
	row "ibv_post_recv added by the shim" "$rs_d Ir/call (shim's own code $sr Ir; plain $rs_p Ir)"
	row "post_send: cost of a 2nd thread (plain)" "$(calc "$ps_t - $ps_p") Ir/call"
	local wp ws
	wp=$(sed -n 's/.*ns_per_iter=\([0-9]*\).*/\1/p' "$CGD/write-plain.txt")
	ws=$(sed -n 's/.*ns_per_iter=\([0-9]*\).*/\1/p' "$CGD/write-shim.txt")
	say "  (wall time per iteration under valgrind: plain $((wp / 1000)) us," \
		"shim $((ws / 1000)) us; not a figure: valgrind + TCG)"
}

# ---- 2. perftest ---------------------------------------------------------------

# pt KIND MODE PORT: one ib_write_bw (KIND=bw) or ib_send_lat (lat) run,
# server h1, client h2, both under the shim when MODE=shim; prints the
# client's figure (bw: MB/s average; lat: "typical avg" in us).
pt() {
	local kind=$1 mode=$2 port=$3 pre=() prog args out srv rc
	[ "$mode" = shim ] && pre=(vmig-run --)
	if [ "$kind" = bw ]; then
		prog=ib_write_bw
		args=(-d rxe0 -x 1 -F -s 65536 -n 500 -p "$port")
	else
		prog=ib_send_lat
		args=(-d rxe0 -x 1 -F -s 2 -n 200 -p "$port")
	fi
	out=$PTD/$kind-$mode-$port
	tb_exec_t 300 h1 "${pre[@]}" "$prog" "${args[@]}" >"$out.srv" 2>&1 &
	srv=$!
	if ! tb_wait_port h1 "$port" 60 >/dev/null 2>&1; then
		wait "$srv"
		return 1
	fi
	tb_exec_t 300 h2 "${pre[@]}" "$prog" "${args[@]}" "$(tb_addr h1)" >"$out.cli" 2>&1
	rc=$?
	tb_wait_bg "$srv" 120 || return 1
	[ $rc = 0 ] || return 1
	if [ "$kind" = bw ]; then
		awk '$1 == 65536 && $2 == 500 { print $4; exit }' "$out.cli"
	else
		awk '$1 == 2 && $2 == 200 { print $5, $6; exit }' "$out.cli"
	fi
}

# pt2 KIND MODE PORT: pt, and once more on PORT+1000 if that run failed
# (rxe under a loaded TCG host now and then ends a run with an error
# completion); the retry is said on stderr.
pt2() {
	pt "$@" && return 0
	echo "  (retrying $1 $2: the run on port $3 failed)" >&2
	pt "$1" "$2" "$(($3 + 1000))"
}

bench_perf() {
	say ""
	say "== 2. perftest h1 <-> h2 (TCG: absolute figures are the emulator's," \
		"compare within this run only)"
	PTD=$(tb_shared)/perftest
	mkdir -p "$PTD"
	tb_exec h1 mkdir -p /run/vmig
	tb_exec h2 mkdir -p /run/vmig
	local r mode v port=18600 bw_p=() bw_s=() lt_p=() lt_s=() la_p=() la_s=()
	local fail=0
	for r in $(seq "$ROUNDS"); do
		for mode in plain shim; do
			port=$((port + 1))
			if v=$(pt2 bw "$mode" "$port") && [ -n "$v" ]; then
				say "  round $r ib_write_bw -s 65536 -n 500  $mode: $v MB/s"
				[ "$mode" = plain ] && bw_p+=("$v") || bw_s+=("$v")
			else
				say "  round $r ib_write_bw $mode: failed twice ($PTD/bw-$mode-*)"
				tail -n 5 "$PTD/bw-$mode-$((port + 1000)).cli" 2>/dev/null | sed 's/^/  | /'
				fail=1
			fi
			port=$((port + 1))
			if v=$(pt2 lat "$mode" "$port") && [ -n "$v" ]; then
				say "  round $r ib_send_lat -s 2 -n 200      $mode: typical ${v% *} us, average ${v#* } us"
				if [ "$mode" = plain ]; then
					lt_p+=("${v% *}"); la_p+=("${v#* }")
				else
					lt_s+=("${v% *}"); la_s+=("${v#* }")
				fi
			else
				say "  round $r ib_send_lat $mode: failed twice ($PTD/lat-$mode-*)"
				tail -n 5 "$PTD/lat-$mode-$((port + 1000)).cli" 2>/dev/null | sed 's/^/  | /'
				fail=1
			fi
		done
	done
	mean() { [ $# -gt 0 ] && printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
	local mbp mbs mtp mts map mas
	mbp=$(mean "${bw_p[@]}"); mbs=$(mean "${bw_s[@]}")
	mtp=$(mean "${lt_p[@]}"); mts=$(mean "${lt_s[@]}")
	map=$(mean "${la_p[@]}"); mas=$(mean "${la_s[@]}")
	if [ -n "$mbp" ] && [ -n "$mbs" ]; then
		say "  ib_write_bw mean: plain $mbp MB/s, shim $mbs MB/s, shim/plain $(calc3 "$mbs / $mbp")"
		row "ib_write_bw 64 KiB (mean of ${#bw_p[@]}+${#bw_s[@]})" \
			"plain $mbp MB/s, shim $mbs MB/s, shim/plain $(calc3 "$mbs / $mbp")"
	else
		missed "ib_write_bw shim/plain" "runs failed (see above)"
	fi
	if [ -n "$mtp" ] && [ -n "$mts" ]; then
		say "  ib_send_lat mean typical: plain $mtp us, shim $mts us, shim/plain $(calc3 "$mts / $mtp")"
		say "  ib_send_lat mean average: plain $map us, shim $mas us, shim/plain $(calc3 "$mas / $map")"
		row "ib_send_lat 2 B typical (mean of ${#lt_p[@]}+${#lt_s[@]})" \
			"plain $mtp us, shim $mts us, shim/plain $(calc3 "$mts / $mtp")"
		row "ib_send_lat 2 B average" \
			"plain $map us, shim $mas us, shim/plain $(calc3 "$mas / $map")"
	else
		missed "ib_send_lat shim/plain" "runs failed (see above)"
	fi
	[ $fail = 0 ] || say "  (some runs failed twice: the means above leave them out)"
}

# ---- 3. cycle step times ---------------------------------------------------------

# The script run in h1 for K QPs: qp_scale under the shim, one cycle, the
# traffic checked again after it.
CYCLE_SH='
k=$1 d=$(mktemp -d)
mkdir -p /run/vmig
vmig-run -- qp_scale -k "$k" --ready "$d/ready" --go "$d/go" >"$d/out" 2>&1 &
qp=$!
for i in $(seq 1200); do
	[ -e "$d/ready" ] && break
	kill -0 $qp 2>/dev/null || break
	sleep 0.5
done
if [ ! -e "$d/ready" ]; then
	echo "qp_scale did not get ready:"; tail -n 5 "$d/out"; kill $qp 2>/dev/null; exit 2
fi
vmig-ctl "$(cat "$d/ready")" cycle --timeout 60000 -v
rc=$?
touch "$d/go"
wait $qp
qrc=$?
grep -v "flush incomplete" "$d/out"
echo "flush-incomplete-warnings $(grep -c "flush incomplete" "$d/out")"
echo "rc cycle=$rc qp_scale=$qrc"
[ $rc = 0 ] && [ $qrc = 0 ]'

bench_cycle() {
	say ""
	say "== 3. vmig-ctl cycle step times (h1, QPs in loopback pairs, under the shim)"
	local k out rc largest=0 st
	local steps=(suspend teardown flush destroy restore reconnect resume total)
	for k in $QPS; do
		out=$(tb_shared)/cycle-$k.txt
		tb_exec_t 1800 h1 bash -c "$CYCLE_SH" cycle "$k" >"$out" 2>&1
		rc=$?
		say "  -- $k QPs:"
		sed 's/^/  | /' "$out"
		if [ $rc != 0 ]; then
			missed "cycle with $k QPs" "failed (rc $rc; output above)"
			continue
		fi
		largest=$k
		local line=""
		for st in "${steps[@]}"; do
			local us
			us=$(awk -v s="$st" '$1 == s && $NF == "us" { print $(NF - 1); exit }' "$out")
			[ -n "$us" ] && line+="$st $(calc "$us / 1000") ms, "
		done
		local fw
		fw=$(awk '/^flush-incomplete-warnings/ { print $2 }' "$out")
		[ "${fw:-0}" != 0 ] && line+="($fw QPs hit the flush bound), "
		row "cycle, $k QPs" "${line%, }"
	done
	say "  largest QP count cycled: $largest"
}

# ---- 4. migration ----------------------------------------------------------------

bench_migrate() {
	say ""
	say "== 4. migration time and downtime (64 MiB and 512 MiB guests vs plain CRIU)"
	say "  not measured yet: migrd's migrate command does not move a process" \
		"between hosts in this tree yet (issue 5); see docs/design.md, Benchmarks"
	row "migration 64/512 MiB, downtime" "not measured yet: migrd cannot migrate yet (issue 5)"
}

# ---- main --------------------------------------------------------------------

say "vmigrate benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), build $VMIG_BUILD_DIR"
tb_up 2
say "(hosts: QEMU $(cat "$VMIG_TESTBED_DIR/accel" 2>/dev/null || echo '?'), 1 vCPU" \
	"each; the machine is shared, so timings are noisy; instruction counts" \
	"are exact)"
wants cost && bench_cost
wants perf && bench_perf
wants cycle && bench_cycle
wants migrate && bench_migrate

say ""
say "== Summary"
for r in "${SUMMARY[@]}"; do
	printf '  %-44s %s\n' "${r%%|*}" "${r#*|}"
done
[ "$MISSED" = 0 ] || say "($MISSED measurement(s) could not be made)"
[ "$MISSED" = 0 ]
