#!/bin/bash
# migrd driving real shims under real RDMA traffic (TAP): rdma_stress runs
# between h1 (guest st-a) and h2 (guest st-b) under vmig-run; `vmigrate
# st-a h2` is asked three times with a backend whose dump always fails, so
# each migration finds the peer on h2 from the shims' state, suspends both
# ends (the peer filtered to st-a's connections), tears st-a down, fails
# in the dump and rolls back: st-a restored on h1, the peer reset and
# reconnected to it, both resumed. rdma_stress then finishes with zero
# lost, duplicated, reordered or corrupted messages.
. "$(dirname "$0")/common.sh"
tb_need 2

cat >"$W/backend" <<'EOT'
#!/bin/sh
# a CRIU that always refuses: every migration must roll back
case $1 in dump) echo "CRIU refused the dump (test)"; exit 1 ;; esac
exit 0
EOT
chmod +x "$W/backend"
migrd_conf "$W/migrd.conf" 2 "backend_exec = $W/backend" \
	"forward_timeout_ms = 40000"
migrd_start h1 h2

s=$(script srv.sh <<EOT
#!/bin/bash
exec timeout 900 vmig-run --no-ns --guest st-a -- rdma_stress -d rxe0 --timeout 800
EOT
)
c=$(script cli.sh <<EOT
#!/bin/bash
sleep 5
exec timeout 900 vmig-run --no-ns --guest st-b -- rdma_stress -d rxe0 -t 200 -q 2 --ops send,write,read,atomic --pause-ms 5 10.77.0.1
EOT
)
d=$(script drive.sh <<EOT
#!/bin/bash
for i in \$(seq 120); do vmigrate list 2>/dev/null | grep -q '^st-a ' && break; sleep 1; done
sleep 25
for n in 1 2 3; do
	echo "== migration \$n"
	if [ "${MIGRD_TB_CYCLE:-0}" = 1 ]; then
		# the shim's own cycle, for comparison (no migrd orchestration)
		vmig-ctl \$(pgrep -x rdma_stress | head -n 1) cycle --timeout 30000 2>&1 | tail -n 3
		echo "cycle-rc=\$?"
	else
		vmigrate st-a h2 2>&1
		echo "rc=\$?"
		vmigrate --json status st-a 2>&1 | grep -E '"(failed-phase|connections|processes)"'
	fi
	sleep 15
done
EOT
)
tb_exec h1 "$s" >"$W/srv.out" 2>&1 &
sp=$!
tb_exec h2 "$c" >"$W/cli.out" 2>&1 &
cp=$!
tb_exec h1 "$d" >"$W/drive.out" 2>&1
ok $? "driver ran"
wait $sp; src=$?
wait $cp; crc=$?
diag <"$W/drive.out"
n=$(grep -c "^rc=1" "$W/drive.out")
[ "$n" = 3 ]
ok $? "three migrations, each failed (exit 1): $n"
[ "$(grep -c 'CRIU refused the dump (test).*runs on the source' "$W/drive.out")" = 3 ]
ok $? "each rolled back with the dump's reason: the guest runs on the source"
[ "$(grep -c '"failed-phase": "dump"' "$W/drive.out")" = 3 ]
ok $? "each failed in the dump, after suspend and teardown"
grep -q '1 processes, 1 peer processes' "$W/migrd-h1.log"
ok $? "migrd found st-a's peer on h2 from the shims' state"
[ $((src | crc)) = 0 ]
ok $? "rdma_stress finished correctly on both ends (rc $src/$crc)"
tail -n 4 "$W/cli.out" | diag
[ $((src | crc)) = 0 ] || { tail -n 15 "$W/srv.out" | diag; tail -n 15 "$W/cli.out" | diag; tail -n 30 "$W/migrd-h1.log" | diag; }
# the daemons go with the hosts (t_done takes down a testbed it booted)
t_done
