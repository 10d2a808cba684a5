#!/usr/bin/env bash
# ./run demo: three Soft-RoCE hosts, migrd on each; rdma_stress runs
# between a process guest on h1 and one on h3, both under the verbs shim;
# `vmigrate` moves the h1 end to h2 while the traffic runs. Prints the
# migration's timeline (phases, downtime) and the checker's verdict.
# Exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

say() { printf '\n== %s\n' "$*"; }
t0=$SECONDS
SECS=${DEMO_SECS:-90}
B=$VMIG_BUILD_DIR

say "booting three QEMU hosts (Debian kernel, Soft-RoCE rxe0 on eth0) on a closed virtual segment"
tb_up 3
"$TB_SH" status

SH=$(tb_shared)/demo
mkdir -p "$SH"
head -c 32 /dev/urandom >"$SH/cluster.key"
chmod 600 "$SH/cluster.key"
cat >"$SH/migrd.conf" <<EOT
run_dir = /run/vmig
image_dir = /run/vmig/images
key_file = $SH/cluster.key
backend = exec
backend_exec = $B/migrd/backend-criu.sh
forward_timeout_ms = 60000
drain_timeout_ms = 30000
restore_timeout_ms = 240000
peer.h1 = 10.77.0.1
peer.h2 = 10.77.0.2
peer.h3 = 10.77.0.3
EOT
say "starting migrd on h1, h2, h3 (one cluster key, HMAC-authenticated sessions)"
for h in h1 h2 h3; do
	tb_sh "$h" "mkdir -p /run/vmig; mount -t devpts devpts /dev/pts 2>/dev/null
		VMIG_LOG_LEVEL=info migrd --config $SH/migrd.conf --host $h 2>>$SH/migrd-$h.log </dev/null" ||
		tb_fail "migrd did not start on $h"
done
# each guest's address routed through its host on the other hosts
tb_sh h1 "vmig-guest route rs-b 10.77.0.3 --addr 10.78.1.2" >/dev/null
tb_sh h2 "vmig-guest route rs-b 10.77.0.3 --addr 10.78.1.2; vmig-guest route rs-a 10.77.0.1 --addr 10.78.1.1" >/dev/null
tb_sh h3 "vmig-guest route rs-a 10.77.0.1 --addr 10.78.1.1" >/dev/null

say "guest rs-b on h3 (10.78.1.2): vmig-run --guest rs-b -- rdma_stress -d rxe0"
tb_exec_t 900 h3 vmig-run --guest rs-b --addr 10.78.1.2 -- rdma_stress -d rxe0 --timeout 600 >/dev/null 2>&1 &
srv=$!
sleep 8
say "guest rs-a on h1 (10.78.1.1): rdma_stress client, ${SECS} s of SEND/RECV, RDMA WRITE, RDMA READ and atomics on 2 RC QPs"
tb_exec_t 900 h1 vmig-run --guest rs-a --addr 10.78.1.1 -- rdma_stress -d rxe0 -t "$SECS" -q 2 \
	--ops send,write,read,atomic --pause-ms 5 10.78.1.2 >/dev/null 2>&1 &
for i in $(seq 120); do
	tb_exec h1 vmigrate list 2>/dev/null | grep -q '^rs-a ' && break
	sleep 1
done
tb_exec h1 vmigrate list
sleep 10

say "vmigrate rs-a h2 (on h1): drain both ends, tear down the HCA state, CRIU dump, move, restore, reconnect"
tb_exec h1 vmigrate rs-a h2 || { tail -n 30 "$SH/migrd-h1.log"; tb_fail "the migration failed"; }

say "timeline (vmigrate --json status rs-a on h1)"
tb_exec h1 vmigrate --json status rs-a >"$SH/status.json" || tb_fail "no status"
python3 - "$SH/status.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
st = st.get("return", st)
t = 0
for name, ms in st.get("phase-times-ms", {}).items():
    print(f"  {t / 1000:7.2f} s  {name:<10} {ms:7d} ms")
    t += ms
print(f"  total {st.get('total-time-ms')} ms, application downtime {st.get('downtime-ms')} ms,"
      f" {st.get('bytes-sent')} bytes of checkpoint sent, status {st.get('status')}")
PY
tb_exec h2 vmig-guest list

say "waiting for rdma_stress to finish on h2 (the checker's verdict)"
verdict=
for i in $(seq $((SECS + 300))); do
	if tb_exec h2 cat /run/vmig/guests/rs-a.log >"$SH/rs-a.log" 2>/dev/null &&
	   grep -q "rdma_stress: sent=" "$SH/rs-a.log"; then
		verdict=$(grep "rdma_stress: sent=" "$SH/rs-a.log")
		break
	fi
	sleep 2
done
tb_wait_bg "$srv" 300
tb_exec h3 cat /run/vmig/guests/rs-b.log >"$SH/rs-b.log" 2>/dev/null
echo "h2 (rs-a, moved): ${verdict:-no verdict}"
echo "h3 (rs-b, peer):  $(grep "rdma_stress: sent=" "$SH/rs-b.log")"
for h in h1 h2 h3; do tb_exec "$h" pkill -x migrd; done

say "taking the hosts down (demo took $((SECONDS - t0)) s)"
tb_down
grep -q "result=ok" <<<"$verdict" && grep -q "result=ok" "$SH/rs-b.log" ||
	tb_fail "rdma_stress reported a problem"
echo "demo: ok"
