#!/bin/bash
# Pre-copy while a peer RDMA-WRITEs into the migrating guest (TAP; DESIGN.md
# section 3: DMA writes are not soft-dirty). dmawrite's target runs in a
# guest on h1 under the shim, its writer in a guest on h3 writes a new
# pattern over the target's MR every 200 ms. `vmigrate G h2` runs pre-copy
# rounds (precopy_rounds = 3); once the first round is shipped the writer
# is told to stop (before the suspend, so its last write lands in memory a
# round already took) and reports its last pattern. After the move the
# target on h2 must see that pattern in every page:
#   A  MR in MAP_SHARED memory, the shim dirties the MRs at TEARDOWN
#   B  the same with VMIG_NO_DIRTY_MRS=1 in the target (negative control):
#      the restored pages should be a round's stale copies; on Debian 12's
#      6.1 kernel and CRIU 3.17 they are not (see below), so B is a TODO
#   C  MR in private memory, dirtied
#   D  private, h1's migrd restarted with precopy_rounds = 0: no pre-copy
#      (the downtime to compare with C's; both carry 32 MiB of ballast)
# Kernel note: for private (copy-on-write) mappings, Linux leaves the
# soft-dirty bit of DMA-pinned pages set (clear_refs skips them), so
# private MR pages are re-dumped every round anyway; shared mappings get no
# such help, which is why A and B use them; but CRIU 3.17's final dump
# took the shared MR's pages whole in B anyway (rounds 2 and 3 left them
# out, the dump had them): neither kind of buffer shows the stale copy
# here. The touch is still what makes it right where soft-dirty is exact.
. "$(dirname "$0")/common.sh"
tb_need 3
cp "$BUILD/tests/testbed/migrd/dmawrite" "$STAGE/"

migrd_conf "$W/migrd.conf" 3 "precopy_rounds = 3" "precopy_stop_bytes = 0"
migrd_conf "$W/migrd-nopc.conf" 3 "precopy_rounds = 0" "precopy_stop_bytes = 0"
migrd_start h1 h2 h3

# CASE TARGET-ADDR WRITER-ADDR MODE [ENV]: starts both ends, moves the
# target to h2 with the writer stopped after round 1, compares.
declare -A LAST SEEN DOWN
run_case() {
	local c=$1 ta=$2 wa=$3 mode=$4 env=${5:-} l=${1,,}
	local g=dw-$l wg=wr-$l st=/run/vmig/wr-$l
	local s j
	guest_route "$wg" h3 "$wa"
	guest_route "$g" h1 "$ta"
	tb_exec h3 sh -c "rm -rf $st && mkdir -p $st"
	s=$(script target-$c.sh <<EOT
#!/bin/bash
exec env VMIG_LOG_LEVEL=info $env vmig-run --guest $g --addr $ta -- dmawrite target 7500 64 $mode 32
EOT
	)
	tb_exec h1 "$s" >"$W/$g.out" 2>&1 &
	s=$(script writer-$c.sh <<EOT
#!/bin/bash
sleep 3
exec vmig-run --guest $wg --addr $wa -- dmawrite writer $ta 7500 $st
EOT
	)
	tb_exec h3 "$s" >"$W/$wg.out" 2>&1 &
	local up=0
	for i in $(seq 120); do
		tb_exec h3 cat $st/last 2>/dev/null | grep -q '^[3-9]\|^[1-9][0-9]' && { up=1; break; }
		sleep 1
	done
	ok $((1 - up)) "$c: the writer on h3 writes into $g on h1 ($mode MR)"

	tb_exec h1 vmigrate --no-wait "$g" h2 >/dev/null 2>&1
	for i in $(seq 600); do
		j=$(tb_exec h1 vmigrate --json status "$g" 2>/dev/null)
		grep -q '"precopy-rounds": [1-9]' <<<"$j" && break
		grep -qE '"status": "(completed|failed|cancelled)"' <<<"$j" && break
		sleep 0.3
	done
	tb_exec h3 touch $st/stop
	for i in $(seq 600); do
		j=$(tb_exec h1 vmigrate --json status "$g" 2>/dev/null)
		grep -qE '"status": "(completed|failed|cancelled)"' <<<"$j" && break
		sleep 1
	done
	echo "$j" >"$W/status-$c.json"
	python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("status", m["status"], "precopy-rounds", m["precopy-rounds"], "round bytes", m.get("precopy-round-bytes"), "downtime-ms", m["downtime-ms"], "phases", m["phase-times-ms"], m.get("error-desc", ""))' "$W/status-$c.json" | diag
	grep -q '"status": "completed"' <<<"$j"
	ok $? "$c: vmigrate $g h2 completed"
	DOWN[$c]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["downtime-ms"])' "$W/status-$c.json" 2>/dev/null)
	LAST[$c]=$(tb_exec h3 cat $st/last 2>/dev/null | sed -n 's/^stopped last=//p')
	# the restored target prints its buffer's state within 100 ms
	sleep 3
	tb_exec h2 cat /run/vmig/guests/$g.log >"$W/$g.log" 2>&1
	SEEN[$c]=$(grep '^buf ' "$W/$g.log" | tail -n 1)
	echo "$c: writer's last pattern ${LAST[$c]:-?}; target on h2: ${SEEN[$c]:-nothing}" | diag
	grep -h 'dirtied\|VMIG_NO_DIRTY_MRS' "$W/$g.log" | tail -n 1 | diag
	# the writer goes: migrd tells a peer by its pid, which another
	# guest's process on h3 may share (both PID 1's children)
	tb_exec h3 touch $st/quit
	sleep 2
}
same() { [ -n "${LAST[$1]}" ] && [ "${SEEN[$1]}" = "buf min=${LAST[$1]} max=${LAST[$1]} bad=0" ]; }

# VMIG_PC_CASES picks some of A B C D (by hand, on a testbed left up)
want() { [[ " ${VMIG_PC_CASES:-A B C D} " == *" $1 "* ]]; }
if want A; then
	run_case A 10.78.2.1 10.78.3.1 shared
	same A
	ok $? "A: shared MR, dirtied: every page holds the writer's last pattern after the move"
fi
if want B; then
	run_case B 10.78.2.2 10.78.3.2 shared VMIG_NO_DIRTY_MRS=1
	# Not failing yet on this stack (docs/design.md): CRIU 3.17's final
	# dump takes anon shared pages whole, so the control cannot see the
	# stale copy; a TODO until a buffer the kernel tracks exactly (a THP?)
	[ -n "${LAST[B]}" ] && [ -n "${SEEN[B]}" ] && ! same B
	ok $? "B: negative control, not dirtied: the target holds stale pages (a round's copy) # TODO the final dump re-takes shared pages here"
fi
if want C; then
	run_case C 10.78.2.3 10.78.3.3 private
	same C
	ok $? "C: private MR, dirtied: every page holds the writer's last pattern"
fi
if want D; then
	tb_exec h1 pkill -x migrd
	sleep 1
	tb_exec h1 "$W/migrd.sh" "$W/migrd-nopc.conf"
	ok $? "migrd restarted on h1 with precopy_rounds = 0"
	sleep 5
	run_case D 10.78.2.4 10.78.3.4 private
	same D
	ok $? "D: no pre-copy: every page holds the writer's last pattern"
fi
echo "downtime with pre-copy (C) ${DOWN[C]:-?} ms, without (D) ${DOWN[D]:-?} ms" | diag

for h in h1 h2 h3; do tb_exec "$h" pkill -x migrd; done
t_done
