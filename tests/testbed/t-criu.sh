#!/usr/bin/env bash
# CRIU inside a testbed host: a plain process (a shell counting into a
# file) is dumped, is gone, is restored, and goes on counting from where it
# was. CRIU does not run on the build machine's own kernel: this is the place.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

tb_up 1

out=$(tb_exec_t 600 h1 bash -c '
set -u
d=/tmp/criu-test
mkdir -p "$d/img"
cd "$d"
say() { echo "$*"; }
criu check >/dev/null 2>&1 && say "criu check: ok" || say "criu check: not ok ($(criu check 2>&1 | tail -n 1))"
setsid bash -c "i=0; while :; do i=\$((i + 1)); echo \$i > $d/count.tmp; mv -f $d/count.tmp $d/count; sleep 0.2; done" \
	</dev/null >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do [ -s count ] && [ "$(cat count)" -ge 3 ] && break; sleep 0.2; done
say "counter pid $pid at $(cat count)"
criu dump -t "$pid" -D img -o dump.log -v4 || { say "dump failed"; tail -n 20 img/dump.log; exit 1; }
say "dumped"
before=$(cat count)
sleep 1
[ -d /proc/$pid ] && { say "still running after dump"; exit 1; }
after=$(cat count)
say "stopped at $before, still $after a second later"
[ "$before" = "$after" ] || { say "counter moved while dumped"; exit 1; }
criu restore -D img -o restore.log -v4 -d || { say "restore failed"; tail -n 20 img/restore.log; exit 1; }
say "restored"
[ -d /proc/$pid ] || { say "no process $pid after restore"; exit 1; }
for i in $(seq 100); do [ "$(cat count)" -ge $((after + 3)) ] && break; sleep 0.2; done
now=$(cat count)
say "count now $now (pid $pid: $(tr "\0" " " < /proc/$pid/cmdline | cut -c1-20))"
[ "$now" -ge $((after + 3)) ] || { say "counter did not go on"; exit 1; }
kill -9 "$pid"
say "criu: all good"
' 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
tb_ok "criu check passes in the host" grep -q '^criu check: ok' <<<"$out"
tb_ok "dump stops the process" grep -q '^stopped at' <<<"$out"
tb_ok "restore brings it back" grep -q '^restored' <<<"$out"
tb_ok "the restored process goes on counting" grep -q '^criu: all good' <<<"$out"
tb_ok "script exit code 0" [ "$rc" = 0 ]
tb_done
