#!/usr/bin/env bash
# The testbed itself: two hosts, exec semantics (exit codes, stdout/stderr,
# environment, concurrency, time bound), hostnames, addresses, the closed
# segment and rxe0 on each host.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

tb_up 2

out=$(tb_exec h1 sh -c 'echo to-out; echo to-err >&2; exit 7' 2>/dev/null); rc=$?
tb_ok "exit code comes back" [ "$rc" = 7 ]
tb_ok "stdout comes back" [ "$out" = to-out ]
err=$(tb_exec h1 sh -c 'echo to-out; echo to-err >&2' 2>&1 >/dev/null)
tb_ok "stderr comes back apart" [ "$err" = to-err ]

tb_ok "hostnames" [ "$(tb_exec h1 hostname)/$(tb_exec h2 hostname)" = h1/h2 ]
env_h2=$(tb_exec h2 sh -c 'echo "$VMIG_HOST $VMIG_HOST_ADDR $(pwd) $VMIG_BUILD_DIR"')
tb_ok "environment in h2 ($env_h2)" [ "$env_h2" = "h2 10.77.0.2 $VMIG_SRC $VMIG_BUILD_DIR" ]
tb_ok "PATH has the built programs" tb_exec h1 sh -c 'case ":$PATH:" in *":$VMIG_BUILD_DIR/tools:"*":$VMIG_BUILD_DIR/tests/apps:"*) ;; *) exit 1;; esac'
tb_ok "arguments keep spaces and quotes" [ "$(tb_exec h1 printf '[%s]' 'a b' "c'd" '$x')" = "[a b][c'd][\$x]" ]

for h in h1 h2; do
	tb_ok "$h: rxe0 is ACTIVE on eth0" tb_exec "$h" sh -c \
		'grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state && rdma link show rxe0/1 | grep -q "netdev eth0"'
	tb_ok "$h: devpts, /dev/shm, lo up" tb_exec "$h" sh -c \
		'mountpoint -q /dev/pts && mountpoint -q /dev/shm && ip -o link show lo | grep -q "UP"'
done
tb_ok "h2 reaches h1 over TCP on the segment" tb_exec h2 bash -c \
	'for i in $(seq 20); do (exec 3<>/dev/tcp/10.77.0.1/22) 2>&1 | grep -q refused && exit 0; sleep 0.5; done; exit 1'

s1=$(tb_scratch h1)
tb_exec h1 sh -c "echo written-in-h1 > $s1/f"
tb_ok "scratch is shared with the build machine" [ "$(cat "$s1/f" 2>/dev/null)" = written-in-h1 ]
tb_ok "/ is read-only in the hosts" tb_exec h1 sh -c '! touch /vmig-tb-probe 2>/dev/null'

# Several exec at once on one host.
t0=$SECONDS
for i in 1 2 3; do
	tb_exec h1 sh -c "sleep 3; echo par$i > $s1/par$i" &
done
wait
tb_ok "three concurrent exec on h1 ($((SECONDS - t0)) s)" \
	[ "$(cat "$s1"/par1 "$s1"/par2 "$s1"/par3 2>/dev/null | tr '\n' ' ')" = "par1 par2 par3 " ]

# A hung command is bounded and killed.
tb_exec_t 3 h1 sh -c "echo started > $s1/hung; exec sleep 1000" 2>/dev/null; rc=$?
tb_ok "timeout gives 124" [ "$rc" = 124 ]
tb_ok "the timed-out command was killed" tb_exec h1 sh -c '! pgrep -x sleep >/dev/null'

# A second testbed side by side (its own state directory) does not clash.
second=$(mktemp -d "$VMIG_BUILD_DIR/tb.XXXXXX")
tb2() { VMIG_TESTBED_DIR=$second "$TB_SH" "$@"; }
tb_ok "a second testbed boots beside the first" tb2 up 1
tb2 exec h1 -- sh -c 'echo second > "$VMIG_TB_SCRATCH/who"'
tb_exec h1 sh -c 'echo first > "$VMIG_TB_SCRATCH/who"'
tb_ok "each h1 writes its own state directory" \
	[ "$(cat "$second/hosts/h1/scratch/who")/$(cat "$s1/who")" = second/first ]
tb_ok "the second testbed's h1 reaches no host of the first" \
	tb2 exec h1 -- bash -c '! timeout 5 bash -c "exec 3<>/dev/tcp/10.77.0.2/22" 2>&1 | grep -q refused'
tb_ok "down stops the second testbed" tb2 down
tb_ok "no process of it is left" [ -z "$(tb2 pids)" ]
rm -rf "$second"
tb_ok "the first testbed still works" tb_exec h2 true

# down leaves nothing behind.
tb_down
tb_ok "down leaves no process" [ -z "$("$TB_SH" pids)" ]
tb_ok "down leaves no socket" [ -z "$(ls "$VMIG_TESTBED_DIR"/net/*.sock 2>/dev/null)" ]
tb_ok "exec on a downed host fails with 255" bash -c '"$0" exec h1 -- true 2>/dev/null; [ $? = 255 ]' "$TB_SH"

tb_done
