#!/usr/bin/env bash
# The CRIU backend's transport against the real criu in a testbed host:
# pre-dump with memory tracking, a final dump on top of it, restore, and the
# process goes on; a dump of a process that does not exist fails with
# CRIU's own reason.
set -uo pipefail
. "$VMIG_SRC/tests/testbed/lib.sh"

rpc=$VMIG_BUILD_DIR/tests/backend/criu-rpc
tb_up 1

out=$(tb_exec_t 600 h1 bash -c '
set -u
rpc=$1
d=/tmp/criu-rpc-test
rm -rf "$d"; mkdir -p "$d/pre" "$d/final"
cd "$d"
ip link set lo up
$rpc version || exit 1
setsid bash -c "i=0; while :; do i=\$((i + 1)); echo \$i > $d/count.tmp; mv -f $d/count.tmp $d/count; sleep 0.2; done" \
	</dev/null >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do [ -s count ] && [ "$(cat count)" -ge 3 ] && break; sleep 0.2; done
$rpc pre-dump "$pid" "$d/pre" || { tail -n 20 pre/criu.log; exit 1; }
[ -d /proc/$pid ] && echo "running after pre-dump"
ls pre | grep -q "^pages-" && echo "pre-dump wrote pages"
$rpc dump "$pid" "$d/final" ../pre || { tail -n 20 final/criu.log; exit 1; }
[ -d /proc/$pid ] || echo "gone after dump"
stopped=$(cat count)
sleep 1
[ "$(cat count)" = "$stopped" ] && echo "counter stopped at $stopped"
$rpc restore "$d/final" || { tail -n 20 final/criu.log; exit 1; }
for i in $(seq 100); do [ "$(cat count)" -ge $((stopped + 3)) ] && break; sleep 0.2; done
[ "$(cat count)" -ge $((stopped + 3)) ] && echo "restored counter went on to $(cat count)"
kill -9 "$pid" 2>/dev/null
mkdir -p "$d/bad"
if $rpc dump 999999 "$d/bad" 2>err.txt; then echo "dump of a missing pid succeeded"; fi
echo "missing pid: $(cat err.txt)"
$rpc restore /nonexistent 2>&1 | head -n 1
' _ "$rpc" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
tb_ok "criu version through the RPC" grep -q '^criu 3\.' <<<"$out"
tb_ok "pre-dump leaves the process running" grep -q '^running after pre-dump' <<<"$out"
tb_ok "pre-dump wrote page images" grep -q '^pre-dump wrote pages' <<<"$out"
tb_ok "final dump on the pre-dump parent stops it" grep -q '^gone after dump' <<<"$out"
tb_ok "nothing runs between dump and restore" grep -q '^counter stopped at' <<<"$out"
tb_ok "restore through the RPC, process goes on" grep -q '^restored counter went on' <<<"$out"
tb_ok "a bad dump fails with criu's reason" grep -q '^missing pid: criu-rpc: criu dump failed' <<<"$out"
tb_ok "a missing images directory is named" grep -q 'images directory /nonexistent' <<<"$out"
tb_ok "script exit code 0" [ "$rc" = 0 ]
tb_done
