#!/usr/bin/env bash
# bench/run.sh (`./run bench`): boots its own two-host Soft-RoCE testbed and
# prints the figures of ../shared/DESIGN.md section 6 that can be measured
# today, each with its unit, then a summary table. It exits non-zero only
# when a measurement could not be made; it never judges a figure.
#
#   1. shim data-path cost: instructions per verb (callgrind, exact and
#      repeatable), plain and under the shim, and the difference; 1b: the
#      time of a post + completion event + poll round, plain and shim
#   2. ib_write_bw / ib_send_lat h1 <-> h2, plain and with the shim on both
#      ends, alternated in one run, and the ratios shim/plain; 2b: the same
#      on one host whose clock counts instructions (QEMU -icount)
#   3. `vmig-ctl PID cycle` step times for 1, 100 and 1000 QPs
#   4. migration h1 -> h2 of a 64 and a 512 MiB process guest by vmigrate,
#      with and without RDMA, and plain CRIU of the same process
#
# Environment: VMIG_BENCH_ITERS (verbs_cost iterations, 200),
# VMIG_BENCH_ROUNDS (perftest plain/shim pairs, 2), VMIG_BENCH_ICOUNT_ROUNDS
# (the same under -icount, 4), VMIG_BENCH_QPS
# ("1 100 1000"), VMIG_BENCH_MIGRATE_MIB ("64 512"), VMIG_BENCH_ONLY (a
# subset of "cost event perf icount cycle vmigrate criu").
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${VMIG_BUILD_DIR:=$SRC/build}"
export VMIG_SRC=$SRC VMIG_BUILD_DIR
. "$SRC/tests/testbed/lib.sh"

ITERS=${VMIG_BENCH_ITERS:-200}
ROUNDS=${VMIG_BENCH_ROUNDS:-2}
ROUNDS_ICOUNT=${VMIG_BENCH_ICOUNT_ROUNDS:-4}
QPS=${VMIG_BENCH_QPS:-1 100 1000}
MIGRATE_MIB=${VMIG_BENCH_MIGRATE_MIB:-64 512}
# 512 MiB of process plus its images in the hosts' tmpfs /tmp
export VMIG_TB_MEM=${VMIG_TB_MEM:-2048}
ONLY=${VMIG_BENCH_ONLY:-cost event perf icount cycle vmigrate criu}
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
	cg write-shim-glibc env VMIG_GLIBC_DOORBELL=1 vmig-run -- \
		$(vg write-shim-glibc) "${base[@]}" || ok=0
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
	for n in write-plain write-shim write-shim-glibc write-thread send-plain send-shim; do
		say "  $n: $(cat "$CGD/$n.txt")"
		grep -q 'empty_polls=0 ' "$CGD/$n.txt" ||
			say "  ($n: some polls found no completion; per-poll figures include them)"
	done

	local ps_p ps_s ps_t ps_g pl_p pl_s rs_p rs_s ps_d pl_d rs_d sp sl sr
	ps_p=$(per_call write-plain cost_post_send)
	ps_s=$(per_call write-shim cost_post_send)
	ps_t=$(per_call write-thread cost_post_send)
	ps_g=$(per_call write-shim-glibc cost_post_send)
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
	say "  shim with glibc's doorbell write() (VMIG_GLIBC_DOORBELL=1):" \
		"ibv_post_send $ps_g Ir, $(calc "$ps_g - $ps_p") added" \
		"(the shim rings rxe's doorbell with a bare syscall: doorbell_write.c)"
	say "  added = shim - plain (all code under the verb); shim's own =" \
		"self instructions of vmig_post_send / vmig_poll_cq / vmig_post_recv"

	row "ibv_post_send added by the shim" "$ps_d Ir/call (shim's own code $sp Ir; plain $ps_p Ir)"
	row "ibv_poll_cq added by the shim" "$pl_d Ir/completion (shim's own code $sl Ir; plain $pl_p Ir)"
	row "ibv_post_recv added by the shim" "$rs_d Ir/call (shim's own code $sr Ir; plain $rs_p Ir)"
	row "post_send: cost of a 2nd thread (plain)" "$(calc "$ps_t - $ps_p") Ir/call"
	row "post_send added, glibc's doorbell write()" "$(calc "$ps_g - $ps_p") Ir/call (VMIG_GLIBC_DOORBELL=1)"
	local wp ws
	wp=$(sed -n 's/.*ns_per_iter=\([0-9]*\).*/\1/p' "$CGD/write-plain.txt")
	ws=$(sed -n 's/.*ns_per_iter=\([0-9]*\).*/\1/p' "$CGD/write-shim.txt")
	say "  (wall time per iteration under valgrind: plain $((wp / 1000)) us," \
		"shim $((ws / 1000)) us; not a figure: valgrind + TCG)"
}

# ---- 1b. completion-event round trip ---------------------------------------

# verbs_cost natively (no valgrind): one RDMA WRITE, wait on the completion
# channel, poll; plain and shim alternated. Under the shim the event goes
# real channel -> the shim's thread -> the application's pipe.
bench_event() {
	say ""
	say "== 1b. completion-event round trip (verbs_cost without valgrind, h1," \
		"$ITERS iterations, plain/shim alternated $ROUNDS times)"
	local r mode v p=() s=() out
	for r in $(seq "$ROUNDS"); do
		for mode in plain shim; do
			local pre=()
			[ "$mode" = shim ] && pre=(vmig-run --)
			out=$(tb_exec_t 600 h1 "${pre[@]}" verbs_cost -n "$ITERS" -w 20 2>&1)
			v=$(sed -n 's/.*ns_per_iter=\([0-9]*\).*/\1/p' <<<"$out")
			if [ -z "$v" ]; then
				say "  round $r $mode: failed: $(tail -n 1 <<<"$out")"
				continue
			fi
			say "  round $r $mode: $(calc "$v / 1000") us per post + event + poll"
			[ "$mode" = plain ] && p+=("$v") || s+=("$v")
		done
	done
	if [ ${#p[@]} = 0 ] || [ ${#s[@]} = 0 ]; then
		missed "completion-event round trip" "runs failed (above)"
		return
	fi
	local mp ms
	mp=$(printf '%s\n' "${p[@]}" | awk '{ s += $1 } END { printf "%.1f", s / NR / 1000 }')
	ms=$(printf '%s\n' "${s[@]}" | awk '{ s += $1 } END { printf "%.1f", s / NR / 1000 }')
	say "  mean: plain $mp us, shim $ms us, shim/plain $(calc3 "$ms / $mp")"
	row "event round trip (write+event+poll)" "plain $mp us, shim $ms us, shim/plain $(calc3 "$ms / $mp")"
}

# ---- 2. perftest ---------------------------------------------------------------

# pt KIND MODE PORT [CLIENT-HOST [N]]: one ib_write_bw (KIND=bw) or
# ib_send_lat (lat: both ends polling; lat-srv-e: the server, always plain,
# sleeps on completion events; lat-e: both ends sleep on events) of N
# iterations (bw 500, lat 200), server on h1, client on CLIENT-HOST (h2),
# under the shim when MODE=shim; prints the client's figure (bw: MB/s
# average; lat: "typical average" in us).
pt() {
	local kind=$1 mode=$2 port=$3 ch=${4:-h2} n=${5:-} pre=() spre=()
	local prog=ib_send_lat size=2 args sargs=() out srv rc
	[ "$mode" = shim ] && pre=(vmig-run --)
	spre=("${pre[@]}")
	case $kind in
	bw) prog=ib_write_bw size=65536 n=${n:-500} ;;
	lat) n=${n:-200} ;;
	lat-srv-e) n=${n:-200} sargs=(-e) spre=() ;;
	lat-e) n=${n:-200} sargs=(-e) args=(-e) ;;
	esac
	args+=(-d rxe0 -x 1 -F -s "$size" -n "$n" -p "$port")
	sargs+=(-d rxe0 -x 1 -F -s "$size" -n "$n" -p "$port")
	out=$PTD/$kind-$mode-$port
	tb_exec_t 300 h1 "${spre[@]}" "$prog" "${sargs[@]}" >"$out.srv" 2>&1 &
	srv=$!
	if ! tb_wait_port h1 "$port" 60 >/dev/null 2>&1; then
		wait "$srv"
		return 1
	fi
	tb_exec_t 300 "$ch" "${pre[@]}" "$prog" "${args[@]}" "$(tb_addr h1)" >"$out.cli" 2>&1
	rc=$?
	tb_wait_bg "$srv" 120 || return 1
	[ $rc = 0 ] || return 1
	if [ "$kind" = bw ]; then
		awk -v s="$size" -v n="$n" '$1 == s && $2 == n { print $4; exit }' "$out.cli"
	else
		awk -v s="$size" -v n="$n" '$1 == s && $2 == n { print $5, $6; exit }' "$out.cli"
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

# ---- 2b. perftest on one instruction-clocked host ----------------------------

# Under plain TCG a guest's clock is the machine's: with other QEMUs on the
# same two cores, runs of one mode differ up to 4x (section 2). With
# -icount the guest's clock (and TSC) advances per instruction executed, so
# perftest's figures count the instructions of the whole path, kernel rxe
# included, whatever the machine's load. One vCPU and no second host
# (icount does not bring up a second vCPU here, and a peer host would
# bring its real-time clock back in): client and server share h1 over
# rxe's loopback, and the latency run has the shim on the polling client
# only (pt lat-srv-e): the vCPU goes back to the client at once (two
# busy-pollers hand it over only at the 4 ms scheduler tick). Order
# plain, shim, shim, plain... so that a drift within the run cancels.
bench_perf_icount() {
	say ""
	say "== 2b. perftest on one host over rxe loopback, QEMU -icount" \
		"(guest time = instructions x 8 ns), $ROUNDS_ICOUNT pairs"
	local rows
	rows=$(mktemp)
	(
		export VMIG_TB_ACCEL=icount
		tb_up 1 >"$rows.up" 2>&1 || { tail -n 5 "$rows.up" >&2; exit 3; }
		PTD=$(tb_shared)/perftest
		mkdir -p "$PTD"
		tb_exec h1 mkdir -p /run/vmig
		local r mode v port=18800 order
		for r in $(seq "$ROUNDS_ICOUNT"); do
			order="plain shim"
			[ $((r % 2)) = 0 ] && order="shim plain"
			for mode in $order; do
				port=$((port + 1))
				v=$(pt bw "$mode" "$port" h1 1000) && [ -n "$v" ] &&
					echo "bw $mode $v" >>"$rows"
				port=$((port + 1))
				v=$(pt lat-srv-e "$mode" "$port" h1 1000) && [ -n "$v" ] &&
					echo "lat $mode $v" >>"$rows"
				port=$((port + 1))
				v=$(pt lat-e "$mode" "$port" h1 1000) && [ -n "$v" ] &&
					echo "late $mode $v" >>"$rows"
			done
		done
	)
	local rc=$?
	rm -f "$rows.up"
	if [ $rc != 0 ] || [ ! -s "$rows" ]; then
		missed "perftest under -icount" "the host did not boot or no run finished"
		rm -f "$rows"
		return
	fi
	awk '{ what = "ib_send_lat -e -s 2 -n 1000 "; fig = "typical " $3 " us, average " $4 " us"
	       if ($1 == "lat") what = "ib_send_lat -s 2 (srv -e)   "
	       if ($1 == "bw") { what = "ib_write_bw -s 65536 -n 1000"; fig = $3 " MB/s" }
	       printf "  %s %-5s %s\n", what, $2, fig }' "$rows"
	# median of a mode's figures (column c)
	med() { awk -v k="$1" -v m="$2" -v c="$3" '$1 == k && $2 == m { print $c }' "$rows" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	local bp bs lp ls ap as
	bp=$(med bw plain 3); bs=$(med bw shim 3)
	lp=$(med lat plain 3); ls=$(med lat shim 3)
	ap=$(med lat plain 4); as=$(med lat shim 4)
	if [ -n "$bp" ] && [ -n "$bs" ]; then
		say "  ib_write_bw median: plain $bp MB/s, shim $bs MB/s, shim/plain $(calc3 "$bs / $bp")"
		row "ib_write_bw, -icount loopback (median)" \
			"plain $bp MB/s, shim $bs MB/s, shim/plain $(calc3 "$bs / $bp")"
	else
		missed "ib_write_bw under -icount" "runs failed"
	fi
	if [ -n "$lp" ] && [ -n "$ls" ]; then
		say "  ib_send_lat (shim on the polling client) median typical: plain $lp us," \
			"shim $ls us, shim/plain $(calc3 "$ls / $lp"); average: plain $ap us," \
			"shim $as us, shim/plain $(calc3 "$as / $ap")"
		say "  (both ends polling under the shim: the added time twice," \
			"$(calc3 "1 + 2 * ($ls - $lp) / $lp") of plain)"
		row "ib_send_lat, -icount loopback (median)" \
			"typical plain $lp us, shim (client) $ls us, shim/plain $(calc3 "$ls / $lp"); both ends ~$(calc3 "1 + 2 * ($ls - $lp) / $lp")"
	else
		missed "ib_send_lat under -icount" "runs failed"
	fi
	lp=$(med late plain 3); ls=$(med late shim 3)
	if [ -n "$lp" ] && [ -n "$ls" ]; then
		say "  ib_send_lat -e median typical: plain $lp us, shim $ls us, shim/plain $(calc3 "$ls / $lp")" \
			"(completion events: the shim relays each through its thread)"
		row "ib_send_lat -e, -icount loopback (median)" \
			"typical plain $lp us, shim $ls us, shim/plain $(calc3 "$ls / $lp")"
	else
		missed "ib_send_lat -e under -icount" "runs failed"
	fi
	rm -f "$rows"
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

# Host-side steps of the CRIU baseline; each prints key=value lines.
# h1: start memload MIB, print its pid once its memory is touched.
ML_START='
rm -f /tmp/ml.ready
setsid memload -m "$1" --dirty 1 --ready /tmp/ml.ready </dev/null >/dev/null 2>&1 &
for i in $(seq 1200); do [ -s /tmp/ml.ready ] && break; sleep 0.1; done
cat /tmp/ml.ready'
# h2: receive a tar stream on PORT into /tmp/img/DIR.
RECV='mkdir -p "/tmp/img/$2" && socat -u "TCP-LISTEN:$1,reuseaddr" - | tar -x -C "/tmp/img/$2"'
# h1: criu KIND (dump or pre-dump) of PID into /tmp/img/DIR [--prev-images-dir
# ../PREV], then send it to h2:PORT; times in ms.
DUMP='
set -o pipefail
kind=$1 pid=$2 dir=/tmp/img/$3 port=$4 prev=${5:-}
ms() { date +%s%3N; }
mkdir -p "$dir"
opts=(-t "$pid" -D "$dir" -o criu.log --track-mem)
[ -n "$prev" ] && opts+=(--prev-images-dir "../$prev")
t0=$(ms)
criu "$kind" "${opts[@]}" || { tail -n 5 "$dir/criu.log"; exit 1; }
t1=$(ms)
b=$(du -sb --apparent-size "$dir" | cut -f1)
tar -c -C "$dir" . | socat -u - "TCP:10.77.0.2:$port" || exit 1
t2=$(ms)
echo "${kind}_ms=$((t1 - t0)) ${kind}_xfer_ms=$((t2 - t1)) ${kind}_bytes=$b"'
# h2: restore /tmp/img/DIR (detached), then end the restored process.
RESTORE='
ms() { date +%s%3N; }
t0=$(ms)
criu restore -D "/tmp/img/$1" -o restore.log -d || { tail -n 5 "/tmp/img/$1/restore.log"; exit 1; }
t1=$(ms)
kill -0 "$2" 2>/dev/null && alive=1 || alive=0
kill -9 "$2" 2>/dev/null
rm -rf /tmp/img
echo "restore_ms=$((t1 - t0)) restored_alive=$alive"'

# kv FILE KEY: the value of KEY=... in FILE
kv() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$1" | tail -n 1; }

# xfer STEP KIND PID DIR PORT [PREV]: receiver on h2, criu KIND on h1, sent.
xfer() {
	local out=$1 rcv
	shift
	# bounds: 512 MiB cross the testbed's segment at about 1 MB/s when
	# the machine is loaded
	tb_exec_t 2400 h2 bash -c "$RECV" recv "$4" "$3" >"$out.recv" 2>&1 &
	rcv=$!
	tb_wait_port h2 "$4" 60 >/dev/null 2>&1 || { wait $rcv; return 1; }
	tb_exec_t 2400 h1 bash -c "$DUMP" dump "$@" >"$out" 2>&1 || { wait $rcv; return 1; }
	tb_wait_bg "$rcv" 600
}

# criu_base MIB MODE: migrate a memload of MIB MiB from h1 to h2 with plain
# CRIU, stop-and-copy (MODE=stop) or one pre-dump first (MODE=pre).
criu_base() {
	local mib=$1 mode=$2 d pid port
	port=$((19000 + mib + ${#mode}))
	d=$(tb_shared)/criu-$mib-$mode
	pid=$(tb_exec h1 bash -c "$ML_START" ml "$mib")
	if [ -z "$pid" ]; then
		missed "CRIU $mode $mib MiB" "memload did not start"
		return
	fi
	if [ "$mode" = pre ]; then
		xfer "$d.pre" pre-dump "$pid" pre "$port" &&
			xfer "$d.dump" dump "$pid" final "$((port + 1))" pre
	else
		xfer "$d.dump" dump "$pid" final "$port"
	fi
	local rc=$?
	if [ $rc = 0 ]; then
		tb_exec_t 1200 h2 bash -c "$RESTORE" restore final "$pid" >"$d.restore" 2>&1
		rc=$?
	fi
	tb_exec h1 bash -c 'kill -9 "$1" 2>/dev/null; rm -rf /tmp/img' k "$pid"
	if [ $rc != 0 ]; then
		cat "$d".* 2>/dev/null | tail -n 12 | sed 's/^/  | /'
		missed "CRIU $mode $mib MiB" "a step failed (output above)"
		return
	fi
	local dm dx db rm_ pm px pb down total
	dm=$(kv "$d.dump" dump_ms); dx=$(kv "$d.dump" dump_xfer_ms)
	db=$(kv "$d.dump" dump_bytes); rm_=$(kv "$d.restore" restore_ms)
	down=$((dm + dx + rm_))
	total=$down
	local line
	line="final dump $dm ms + transfer $dx ms ($(calc "$db / 1048576") MiB) + restore $rm_ ms"
	if [ "$mode" = pre ]; then
		pm=$(kv "$d.pre" pre-dump_ms); px=$(kv "$d.pre" pre-dump_xfer_ms)
		pb=$(kv "$d.pre" pre-dump_bytes)
		total=$((total + pm + px))
		line="pre-dump $pm ms + transfer $px ms ($(calc "$pb / 1048576") MiB), then $line"
	fi
	grep -q 'restored_alive=1' "$d.restore" || line+=" (restored process was not running)"
	say "  CRIU $mode-copy $mib MiB: total $total ms, downtime $down ms: $line"
	row "CRIU $mode-copy, $mib MiB process" "total $total ms, downtime $down ms"
}

# migrd_up: migrd on h1 and h2 (CRIU backend, images in tmpfs), once.
MIGRD_UP=0
migrd_up() {
	[ $MIGRD_UP = 1 ] && return 0
	MD=$(tb_shared)/migrd
	mkdir -p "$MD"
	head -c 32 /dev/urandom >"$MD/cluster.key"
	chmod 600 "$MD/cluster.key"
	cat >"$MD/migrd.conf" <<CONF
run_dir = /run/vmig
image_dir = /run/vmig/images
backend = exec
backend_exec = $VMIG_BUILD_DIR/migrd/backend-criu.sh
key_file = $MD/cluster.key
restore_timeout_ms = 600000
forward_timeout_ms = 60000
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
CONF
	local h
	for h in h1 h2; do
		tb_exec "$h" bash -c 'mkdir -p /run/vmig; mount -t devpts devpts /dev/pts 2>/dev/null
			VMIG_LOG_LEVEL=info migrd --config "$1" --host "$2" 2>>"$3" </dev/null' \
			m "$MD/migrd.conf" "$h" "$MD/$h.log" || return 1
	done
	MIGRD_UP=1
}

# vmig_move NAME MIB RDMA: start guest NAME on h1 (memload, or with RDMA
# qp_scale -k 2 under the shim, MIB MiB of memory), `vmigrate NAME h2`,
# print the figures from `vmigrate --json status`.
vmig_move() {
	local name=$1 mib=$2 rdma=$3 d cmd out rc
	d=$(tb_shared)/vm-$name
	mkdir -p "$d"
	rm -f "$d/ready" "$d/go"
	if [ "$rdma" = 1 ]; then
		cmd=(vmig-run --no-ns --guest "$name" -- qp_scale -k 2 --mem "$mib"
		     --ready "$d/ready" --go "$d/go" --wait 3000)
	else
		cmd=(memload -m "$mib" --dirty 1 --ready "$d/ready")
	fi
	if ! tb_exec h1 env VMIG_RUN_DIR=/run/vmig vmig-guest start "$name" -- \
			"${cmd[@]}" >"$d/start" 2>&1 || ! tb_wait_file "$d/ready" 600; then
		sed 's/^/  | /' "$d/start"
		return 1
	fi
	# with RDMA, the shim must have registered: the guest is then known
	# with its process (migrd moves a guest without shims as plain CRIU)
	if [ "$rdma" = 1 ]; then
		for i in $(seq 60); do
			tb_exec h1 env VMIG_RUN_DIR=/run/vmig vmigrate list 2>/dev/null |
				grep -q "^$name  *[1-9]" && break
			sleep 1
		done
	fi
	tb_exec_t 3600 h1 env VMIG_RUN_DIR=/run/vmig vmigrate "$name" h2 >"$d/migrate" 2>&1
	rc=$?
	tb_exec h1 env VMIG_RUN_DIR=/run/vmig vmigrate --json status "$name" >"$d/status" 2>&1
	if [ $rc != 0 ]; then
		tail -n 6 "$d/migrate" | sed 's/^/  | /'
		sed 's/^/  | /' "$d/status" | tail -n 3
		# CRIU's own words, when it was CRIU that failed
		tb_exec h1 sh -c "grep -h -E 'Error|rror \\(' /run/vmig/images/out-$name/*.log /run/vmig/images/out-$name/*/*.log 2>/dev/null | tail -n 8" |
			sed 's/^/  | criu: /'
		tb_exec h1 env VMIG_RUN_DIR=/run/vmig vmig-guest stop "$name" >/dev/null 2>&1
		return 1
	fi
	if [ "$rdma" = 1 ]; then
		touch "$d/go"
		sleep 5
		out=$(tb_exec h2 bash -c 'cat /run/vmig/guests/$1.log 2>/dev/null | tail -n 3' l "$name")
		grep -q 'after=ok' <<<"$out" && say "  (RDMA traffic checked after the move: ok)" ||
			say "  (RDMA traffic after the move not confirmed: $(tail -n 1 <<<"$out"))"
	fi
	tb_exec h2 env VMIG_RUN_DIR=/run/vmig vmig-guest stop "$name" >/dev/null 2>&1
	python3 - "$d/status" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
m = json.loads(t[t.index('{'):])
ph = m.get('phase-times-ms', {})
print('total %s ms, downtime %s ms, %.1f MiB sent; phases: %s' % (
    m.get('total-time-ms'), m.get('downtime-ms'),
    m.get('bytes-sent', 0) / 1048576.0,
    ', '.join('%s %s' % (k, v) for k, v in ph.items())))
PY
}

bench_migrate() {
	say ""
	say "== 4. migration h1 -> h2: total time and downtime ($MIGRATE_MIB MiB)"
	local mib v rdma
	if ! wants vmigrate; then
		:
	elif [ -x "$VMIG_BUILD_DIR/migrd/migrd" ] && migrd_up; then
		for mib in $MIGRATE_MIB; do
			for rdma in 1 0; do
				local what="vmigrate, $mib MiB guest, no RDMA"
				[ $rdma = 1 ] && what="vmigrate, $mib MiB guest, RDMA (2 QPs)"
				if v=$(vmig_move "g$mib$rdma" "$mib" "$rdma"); then
					say "  $what: $v"
					row "$what" "$(sed -n '$s/; phases.*//p' <<<"$v")"
				else
					local why
					why=$(sed -n 's/.*"error-desc": "\(.*\)",*$/\1/p' \
						"$(tb_shared)/vm-g$mib$rdma/status" | head -n 1)
					say "$v"
					say "  $what: not measured yet: the migration failed: ${why:-see above}"
					row "$what" "not measured yet: migration failed in $(sed -n \
						's/.*"failed-phase": "\(.*\)".*/\1/p' \
						"$(tb_shared)/vm-g$mib$rdma/status" | head -n 1)"
				fi
			done
		done
	else
		say "  vmigrate: not measured: migrd did not start"
		row "vmigrate 64/512 MiB" "not measured: migrd did not start"
	fi
	wants criu || return 0
	say "  baseline: plain CRIU of a process without RDMA (memload, dirtying" \
		"0.4 MiB/s), images streamed h1 -> h2 over TCP (tar | socat)," \
		"downtime = the steps while the process is frozen"
	local mode
	for mib in $MIGRATE_MIB; do
		for mode in stop pre; do
			criu_base "$mib" "$mode"
		done
	done
}

# ---- main --------------------------------------------------------------------

# All in functions, read whole before anything runs: editing this file
# while it runs does not change a running bench.
main() {

	say "vmigrate benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), build $VMIG_BUILD_DIR"
	if [ "$ONLY" != icount ]; then
		tb_up 2
		say "(hosts: QEMU $(cat "$VMIG_TESTBED_DIR/accel" 2>/dev/null || echo '?'), 1 vCPU" \
			"each; the machine is shared, so timings are noisy; instruction counts" \
			"are exact)"
	fi
	wants cost && bench_cost
	wants event && bench_event
	wants perf && bench_perf
	wants icount && bench_perf_icount
	wants cycle && bench_cycle
	{ wants vmigrate || wants criu; } && bench_migrate

	say ""
	say "== Summary"
	for r in "${SUMMARY[@]}"; do
		printf '  %-44s %s\n' "${r%%|*}" "${r#*|}"
	done
	[ "$MISSED" = 0 ] || say "($MISSED measurement(s) could not be made)"
	[ "$MISSED" = 0 ]
}

main "$@"; exit $?
