#!/usr/bin/env bash
# CRIU pre-dump of a process with live uverbs mappings (docs/design.md,
# "Pre-copy with live RDMA"): vmig_criu_plugin.so lets it through.
#  1. rdma_stress server in guest pg on h1, client on h2, RC send, write,
#     read and atomics. While it runs: a pre-dump without the plugin fails
#     (CRIU: "Can't handle non-regular mapping"), with it (vmig-guest
#     pre-dump, lib/criu_swrk) two rounds succeed and no page of a uverbs
#     mapping is in the images; the traffic ends with no error.
#  2. The chain: uvhold in guest ph holds uverbs mappings through a
#     pre-dump, drops them (as the shim's teardown does) and dirties half
#     its buffer; the final dump (no plugin) with the pre-dump as parent is
#     restored and every page reads back right.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

G=$VMIG_BUILD_DIR/tools/vmig-guest
UVHOLD=$VMIG_BUILD_DIR/tests/testbed/uvhold
PLUGIN_DIR=$VMIG_BUILD_DIR/criu-plugin
ADDR=10.78.9.9
PORT=18610
CLEAN='lost=0 duplicated=0 reordered=0 corrupted=0 .* atomic_bad=0 errors=0 .*result=ok'

[ -f "$PLUGIN_DIR/vmig_criu_plugin.so" ] || tb_fail "$PLUGIN_DIR/vmig_criu_plugin.so is not built"
[ -x "$UVHOLD" ] || tb_fail "$UVHOLD is not built"
tb_up 2
H1=$(tb_addr h1)

# --- 1: pre-dumps while RDMA traffic runs
out=$(tb_sh h1 '"$1" stop pg >/dev/null 2>&1; rm -rf /tmp/pd; mkdir -p /tmp/pd
	"$1" start pg --addr "$2" -- rdma_stress -d rxe0 -g 1 -p "$3" --timeout 120' \
	"$G" "$ADDR" "$PORT" 2>&1)
tb_ok "guest pg runs the rdma_stress server on h1" [ $? = 0 ]
echo "$out" | sed 's/^/# /'
tb_exec h2 "$G" route pg "$H1" --addr "$ADDR" >/dev/null 2>&1 || tb_fail "no route to pg on h2"
clog=$(tb_scratch h2)/client.log
tb_exec h2 rdma_stress -d rxe0 -g 1 -p "$PORT" -t 60 \
	--ops send,write,read,atomic "$ADDR" >"$clog" 2>&1 &
cli=$!

out=$(tb_sh h1 '
	G=$1 PLUGIN_DIR=$2
	for i in $(seq 120); do
		srv=$(pgrep -x rdma_stress) && grep -q uverbs /proc/$srv/maps && break
		sleep 0.5
	done
	grep uverbs /proc/$srv/maps | sed "s/^/maps: /"
	sleep 5 # into the traffic
	t0=$(date +%s.%N)
	VMIG_CRIU_PLUGIN_DIR= $G pre-dump pg /tmp/pd/none && echo "no-plugin: done" ||
		echo "no-plugin: failed: $(grep -m1 "non-regular mapping" /tmp/pd/none/pre-dump.log)"
	t1=$(date +%s.%N)
	VMIG_CRIU_PLUGIN_DIR=$PLUGIN_DIR $G pre-dump pg /tmp/pd/1 && echo "round 1: done"
	t2=$(date +%s.%N)
	VMIG_CRIU_PLUGIN_DIR=$PLUGIN_DIR $G pre-dump pg /tmp/pd/2 --parent ../1 && echo "round 2: done"
	t3=$(date +%s.%N)
	awk -v a=$t0 -v b=$t1 -v c=$t2 -v d=$t3 "BEGIN { printf \"times: no-plugin %.1fs round 1 %.1fs round 2 %.1fs\n\", b - a, c - b, d - c }"
	grep -h "vmig: uverbs" /tmp/pd/1/pre-dump.log /tmp/pd/2/pre-dump.log | sed "s/^/log: /"
	# the images hold no page of a uverbs mapping (pagemap named by ns pid)
	ns=$(awk "/^NSpid/ { print \$NF }" /proc/$srv/status)
	for r in 1 2; do
		crit decode --pretty -i /tmp/pd/$r/pagemap-$ns.img | python3 -c "
import json, sys
maps = [l.split()[0].split(\"-\") for l in open(\"/proc/$srv/maps\") if \"uverbs\" in l]
maps = [(int(a, 16), int(b, 16)) for a, b in maps]
pages = json.load(sys.stdin)[\"entries\"][1:]
hit = [e for e in pages for a, b in maps
       if int(e[\"vaddr\"], 16) < b and int(e[\"vaddr\"], 16) + 4096 * e[\"nr_pages\"] > a]
print(\"round $r: %d pagemap entries, %d in %d uverbs mappings\" % (len(pages), len(hit), len(maps)))"
	done' "$G" "$PLUGIN_DIR" 2>&1)
echo "$out" | sed 's/^/# /'
tb_ok "without the plugin the pre-dump fails on the uverbs mapping" \
	grep -q "^no-plugin: failed: .*Can't handle non-regular mapping" <<<"$out"
tb_ok "with the plugin a pre-dump succeeds while RDMA runs" grep -q '^round 1: done' <<<"$out"
tb_ok "and a second round with the first as parent" grep -q '^round 2: done' <<<"$out"
tb_ok "the plugin claimed the uverbs mappings" grep -q '^log: .*vmig: uverbs mapping of .* left out of the pre-dump' <<<"$out"
tb_ok "no page of a uverbs mapping in either round's images" \
	test "$(grep -c '^round [12]: [1-9][0-9]* pagemap entries, 0 in [1-9]' <<<"$out")" = 2

tb_wait_bg "$cli" 180
crc=$?
slog=$(tb_sh h1 'for i in $(seq 60); do "$1" list | grep -q "^pg " || break; sleep 1; done
	cat /run/vmig/guests/pg.log; "$1" stop pg >/dev/null 2>&1' "$G" 2>&1)
sed 's/^/# client: /' "$clog"
echo "$slog" | sed 's/^/# server: /'
tb_ok "client exits 0" [ "$crc" = 0 ]
tb_ok "client reports clean traffic" grep -q "^rdma_stress: sent=[1-9].*$CLEAN" "$clog"
tb_ok "server reports clean traffic" grep -q "^rdma_stress: sent=[1-9].*$CLEAN" <<<"$slog"

# --- 2: pre-dump with the plugin, final dump without, restore
out=$(tb_sh h1 '
	G=$1 UVHOLD=$2 PLUGIN_DIR=$3 log=/run/vmig/guests/ph.log
	"$G" stop ph >/dev/null 2>&1; rm -rf /tmp/pc; mkdir -p /tmp/pc
	wait_log() { for i in $(seq 120); do grep -q "$1" $log && return 0; sleep 0.5; done; return 1; }
	$G start ph -- "$UVHOLD" >/dev/null || exit 1
	wait_log "^ready" || { echo "uvhold not ready"; cat $log; exit 1; }
	pid=$(pgrep -x uvhold)
	echo "uverbs mappings before: $(grep -c uverbs /proc/$pid/maps)"
	VMIG_CRIU_PLUGIN_DIR=$PLUGIN_DIR $G pre-dump ph /tmp/pc/1 && echo "pre-dump: done"
	kill -USR1 $pid
	wait_log "^released" || { echo "uvhold did not release"; exit 1; }
	echo "uverbs mappings after release: $(grep -c uverbs /proc/$pid/maps)"
	ns=$(awk "/^NSpid/ { print \$NF }" /proc/$pid/status)
	VMIG_CRIU_PLUGIN_DIR=$PLUGIN_DIR $G checkpoint ph /tmp/pc/2 --parent ../1 && echo "final dump: done"
	grep -q "Plugin \"vmig\"" /tmp/pc/2/dump.log && echo "final dump loaded the plugin" ||
		echo "final dump without the plugin"
	crit decode --pretty -i /tmp/pc/2/pagemap-$ns.img | python3 -c "
import json, sys
e = json.load(sys.stdin)[\"entries\"][1:]
n = lambda f: sum(x[\"nr_pages\"] for x in e if f(x.get(\"flags\", \"\")))
print(\"final dump: %d pages in the parent, %d in its own images\" % (n(lambda f: \"PARENT\" in f), n(lambda f: \"PARENT\" not in f)))"
	[ -d /proc/$pid ] && echo "still running after the dump"
	new=$($G restore ph /tmp/pc/2) || { tail -n 20 /tmp/pc/2/restore.log; exit 1; }
	echo "restored: init $new"
	pid=$(pgrep -x uvhold)
	kill -USR2 $pid
	wait_log "^verify" || echo "no answer from the restored uvhold"
	grep "^verify" $log
	$G stop ph >/dev/null' "$G" "$UVHOLD" "$PLUGIN_DIR" 2>&1)
echo "$out" | sed 's/^/# /'
tb_ok "pre-dump with the plugin while uvhold holds uverbs mappings" grep -q '^pre-dump: done' <<<"$out"
tb_ok "no uverbs mapping left after the release" grep -q '^uverbs mappings after release: 0' <<<"$out"
tb_ok "final dump with the pre-dump as parent" grep -q '^final dump: done' <<<"$out"
tb_ok "the final dump ran without the plugin" grep -q '^final dump without the plugin' <<<"$out"
tb_ok "the final dump took unchanged pages from the pre-dump" \
	grep -q '^final dump: [1-9][0-9]* pages in the parent' <<<"$out"
tb_ok "restore of the chain" grep -q '^restored: init' <<<"$out"
tb_ok "every page right after the restore (pre-dump and final dump pages)" grep -q '^verify ok' <<<"$out"
tb_done
