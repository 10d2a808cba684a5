#!/bin/bash
# A drain that cannot finish (the receiver posts no buffer, the SEND waits
# on RNR) ends in a clean, reported abort (ERR_TIMEOUT) and the connection
# keeps working; bad control messages (garbage, wrong version, unknown
# type, wrong state) get an ERROR reply and change nothing.
. "$(dirname "$0")/common.sh"
tb_need 1
cp "$BUILD/tests/testbed/shim/shim_rnr" "$STAGE/"

app=$(script app.sh <<EOT
#!/bin/bash
exec vmig-run --no-ns --guest rnr -- shim_rnr -d rxe0 -g 1 --delay 40 --sends 5
EOT
)
drive=$(script drive.sh <<'EOT'
#!/bin/bash
W=$(dirname "$0")
for i in $(seq 120); do grep -q ready "$W/app.out" 2>/dev/null && break; sleep 0.5; done
pid=$(awk '/ready/ {print $2}' "$W/app.out")
[ -n "$pid" ] || { echo "no app"; exit 1; }
echo "pid $pid"
r() { echo "== $*"; vmig-ctl "$pid" "$@" 2>&1; echo "rc=$?"; }
r garbage
r bad-version
r bad-type
r resume
r teardown
r restore
r state
r suspend --timeout 3000
r state
EOT
)
tb_exec h1 "$app" > "$W/app.out" 2>&1 &
ap=$!
tb_exec h1 "$drive" > "$W/drive.out" 2>&1
ok $? "drive script ran"
wait $ap
arc=$?
out=$W/drive.out
sec() { awk -v s="== $1" '$0 ~ "^== " {on = ($0 == s)} on' "$out"; }

for c in garbage bad-version bad-type; do
	sec "$c" | grep -q "CTL_ERROR" && sec "$c" | grep -q "rc=0"
	ok $? "$c: error reply ($(sec "$c" | sed -n 2p))"
done
for c in resume teardown restore; do
	sec "$c" | grep -q "ERR_BAD_STATE" && sec "$c" | grep -q "rc=1"
	ok $? "$c while running: ERR_BAD_STATE"
done
sec state | grep -q "phase running"
ok $? "after the bad requests the shim is still running"
sec "suspend --timeout 3000" | grep -q "ERR_TIMEOUT" &&
	sec "suspend --timeout 3000" | grep -q "rc=3"
ok $? "drain without receive buffers: ERR_TIMEOUT, exit 3"
sec "suspend --timeout 3000" | grep ERR_TIMEOUT | diag
awk '/^== state/ {n++} n == 2' "$out" | grep -q "phase running"
ok $? "after the abort the shim is running again"
[ "$arc" = 0 ] && grep -q "^ok:" "$W/app.out"
ok $? "the connection kept working: $(grep '^ok:' "$W/app.out")"
[ "$arc" = 0 ] || diag < "$W/app.out"
t_done
