#!/bin/bash
# Stage 2 of a testbed host, run by stage 1 (initramfs-init.sh) in the chroot
# of the build machine's root filesystem. Brings up lo, eth0 and the
# Soft-RoCE device rxe0, says "ready", then serves exec jobs: the build
# machine drops a job directory in $STATE/hosts/$HOST/jobs/ID/ (cmd.sh, then
# the marker "go"); this loop runs it in its own session with stdout/stderr
# to files there and writes its exit code to "rc"; a "kill" file kills it.
set -u
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
STATE=$(arg tb.state)
HOST=$(arg tb.host)
ADDR=$(arg tb.addr)
KROOT=$(arg tb.kroot)
HDIR=$STATE/hosts/$HOST
JOBS=$HDIR/jobs
export PATH=$(arg tb.bin):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp LC_ALL=C

say() { echo "TB2[$HOST]: $*"; }
uptime_s() { local u; read -r u _ < /proc/uptime; echo "$u"; }
fail() {
	say "FATAL: $*"
	echo "$*" > "$HDIR/failed"
	exit 1
}

hostname "$HOST"
ip link set lo up || fail "lo up"
modprobe -d "$KROOT" virtio_net || fail "modprobe virtio_net"
for i in $(seq 50); do
	[ -e /sys/class/net/eth0 ] && break
	sleep 0.1
done
ip addr add "$ADDR/24" dev eth0 || fail "address on eth0"
# Jumbo frames: rxe0's active MTU follows (4096 instead of 1024), which
# halves the packets per byte, and so the cost of a byte under TCG.
MTU=$(arg tb.mtu)
ip link set eth0 mtu "${MTU:-9000}" || fail "mtu ${MTU:-9000} on eth0"
ip link set eth0 up || fail "eth0 up"
# Soft-RoCE needs a crc32 implementation loaded before rdma_rxe.
modprobe -d "$KROOT" -a crc32_generic crc32_pclmul 2>/dev/null
modprobe -d "$KROOT" -a rdma_rxe ib_uverbs rdma_ucm || fail "modprobe rdma_rxe ib_uverbs rdma_ucm"
rdma link add rxe0 type rxe netdev eth0 || fail "rdma link add rxe0"
for i in $(seq 100); do
	grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state 2>/dev/null && break
	sleep 0.1
done
grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state || fail "rxe0 port not ACTIVE"
mkdir -p "$JOBS" || fail "no job directory $JOBS"
say "ready at $(uptime_s)s: $ADDR, rxe0 on eth0"
echo "$(uptime_s)" > "$HDIR/ready.tmp" && mv "$HDIR/ready.tmp" "$HDIR/ready"

# A fifo nobody writes to: `read -t` on it is a sleep without a fork.
mkfifo /run/tb-sleep && exec 9<> /run/tb-sleep
shopt -s nullglob
# Poll every 20 ms for a second after the last new job, then every 100 ms:
# an idle host under TCG costs little, a burst of execs goes fast. Forks
# are what costs under TCG: the loop itself makes none, a job costs one.
# cmd.sh writes its own exit code to "rc"; a job that dies without doing
# so (killed) gets 255 there.
declare -A running=() # job directory -> pid (= its session id)
declare -A seen=()    # job directories already started
idle=0
n=0
while :; do
	for d in "$JOBS"/*/; do
		d=${d%/}
		if [ -z "${running[$d]-}" ]; then
			[ -z "${seen[$d]-}" ] && [ -e "$d/go" ] || continue
			seen[$d]=1
			# A child of this shell is no process group leader: setsid
			# does not fork, $! is the job's session id.
			setsid bash "$d/cmd.sh" < /dev/null > "$d/out" 2> "$d/err" &
			running[$d]=$!
			echo "$!" > "$d/pid"
			idle=0
		elif [ -e "$d/kill" ] && [ ! -e "$d/killed" ]; then
			kill -KILL -- "-${running[$d]}" 2> /dev/null
			: > "$d/killed"
		fi
	done
	for d in "${!running[@]}"; do
		kill -0 "${running[$d]}" 2> /dev/null && continue
		unset "running[$d]"
		[ -d "$d" ] && [ ! -s "$d/rc" ] && echo 255 2> /dev/null > "$d/rc"
	done
	if [ $((++n % 500)) = 0 ]; then
		for d in "${!seen[@]}"; do
			[ -n "${running[$d]-}" ] || [ -d "$d" ] || unset "seen[$d]"
		done
	fi
	if [ $idle -lt 50 ]; then
		idle=$((idle + 1))
		read -r -t 0.02 -u 9
	else
		read -r -t 0.1 -u 9
	fi
done
