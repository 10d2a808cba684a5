#!/usr/bin/env bash
# The Soft-RoCE testbed: QEMU hosts h1..hN running Debian's kernel with an
# rxe0 device each, on a closed virtual Ethernet segment. See docs/testbed.md.
#
#   testbed.sh fetch-kernel            kernel + modules + initramfs into the cache
#   testbed.sh up N                    boot h1..hN (N = 1..4)
#   testbed.sh exec [--timeout S] HOST -- CMD ARGS...
#   testbed.sh down                    stop every host, remove the segment
#   testbed.sh status                  list the hosts
#   testbed.sh console HOST            print a host's console log
#   testbed.sh accel                   print the accelerator `up` would use
#
# Environment: VMIG_SRC, VMIG_BUILD_DIR (default $VMIG_SRC/build),
# VMIG_TESTBED_DIR (state, default $VMIG_BUILD_DIR/testbed),
# VMIG_TESTBED_CACHE (kernel cache, default /var/cache/vmigrate-testbed),
# VMIG_TB_ACCEL (kvm|tcg|icount|auto; icount: TCG whose guest clock counts
# instructions, 2^VMIG_TB_ICOUNT_SHIFT ns each, default 3), VMIG_TB_MEM (MiB
# per host, default 1024), VMIG_TB_SMP (vCPUs per host, default 1),
# VMIG_TB_BOOT_TIMEOUT (s), VMIG_TB_EXEC_TIMEOUT (s, default 900, 0 = none),
# VMIG_TB_OWNER (pid: the testbed goes down by itself when it dies).
set -euo pipefail

TB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VMIG_SRC=${VMIG_SRC:-$(cd "$TB_HERE/../.." && pwd)}
VMIG_BUILD_DIR=${VMIG_BUILD_DIR:-$VMIG_SRC/build}
STATE=${VMIG_TESTBED_DIR:-$VMIG_BUILD_DIR/testbed}
CACHE=${VMIG_TESTBED_CACHE:-/var/cache/vmigrate-testbed}
export VMIG_SRC VMIG_BUILD_DIR
# The system's python (a version manager's shim costs a second per call).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# The virtio/9p modules the initramfs loads, in order.
INITRD_MODS=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
	virtio_pci netfs fscache 9pnet 9pnet_virtio 9p)

die() { echo "testbed: $*" >&2; exit 1; }
note() { echo "testbed: $*" >&2; }

usage() {
	sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

host_index() {
	[[ $1 =~ ^h([1-4])$ ]] || die "no such host '$1' (hosts are h1..h4)"
	echo "${BASH_REMATCH[1]}"
}
host_addr() { echo "10.77.0.$(host_index "$1")"; }

# ---------------------------------------------------------------- kernel cache

kernel_pkg_version() {
	# The version linux-image-amd64 depends on, e.g. 6.1.0-56-amd64.
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1
}

# Sets KVER, KROOT, KERNEL, INITRD; fetches what is missing.
cmd_fetch_kernel() {
	local ver log tmp
	mkdir -p "$CACHE" 2>/dev/null || die "cannot create the kernel cache $CACHE (set VMIG_TESTBED_CACHE)"
	# One fetch at a time (two testbeds may come up at once on a new machine).
	exec 8>>"$CACHE/.lock"
	flock -w 600 8 || die "the kernel cache $CACHE stays locked"
	ver=$(kernel_pkg_version)
	if [ -z "$ver" ]; then
		# No apt lists: use what the cache holds.
		[ -L "$CACHE/current" ] && ver=$(readlink "$CACHE/current")
		[ -n "$ver" ] || {
			apt-get update -qq >/dev/null 2>&1 || true
			ver=$(kernel_pkg_version)
		}
		[ -n "$ver" ] || die "cannot tell which linux-image-amd64 kernel to fetch (apt-cache depends linux-image-amd64)"
	fi
	KVER=$ver
	KROOT=$CACHE/$ver
	KERNEL=$KROOT/boot/vmlinuz-$ver
	if [ ! -e "$KROOT/.unpacked" ]; then
		log=$(mktemp)
		tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
		if ! (cd "$tmp" && apt-get download "linux-image-$ver" >"$log" 2>&1); then
			# Old package lists name a version the mirror no longer has.
			apt-get update -qq >>"$log" 2>&1 || true
			ver=$(kernel_pkg_version)
			[ -n "$ver" ] || ver=$KVER
			KVER=$ver KROOT=$CACHE/$ver KERNEL=$CACHE/$ver/boot/vmlinuz-$ver
		fi
		if ! (cd "$tmp" && { [ -e ./linux-image-*.deb ] || apt-get download "linux-image-$ver" >>"$log" 2>&1; } &&
			rm -rf "$KROOT" && mkdir -p "$KROOT" && dpkg -x ./linux-image-*.deb "$KROOT" >>"$log" 2>&1 &&
			depmod -b "$KROOT" "$ver" >>"$log" 2>&1); then
			cat "$log" >&2
			rm -rf "$tmp" "$log"
			die "fetching kernel linux-image-$ver failed"
		fi
		rm -rf "$tmp" "$log"
		touch "$KROOT/.unpacked"
		ln -sfn "$ver" "$CACHE/current"
	fi
	[ -e "$CACHE/current" ] || ln -sfn "$ver" "$CACHE/current"
	if [ ! -x "$KROOT/tbbin/modprobe" ]; then
		# For the hosts: the build machine has no /lib/modules/$KVER.
		mkdir -p "$KROOT/tbbin"
		printf '#!/bin/sh\nexec /sbin/modprobe -d %s "$@"\n' "$KROOT" >"$KROOT/tbbin/modprobe.tmp"
		chmod 755 "$KROOT/tbbin/modprobe.tmp"
		mv "$KROOT/tbbin/modprobe.tmp" "$KROOT/tbbin/modprobe"
	fi
	build_initrd
	exec 8>&-
}

build_initrd() {
	local sum dir m f busybox
	busybox=$(command -v busybox) || die "busybox (busybox-static) is not installed"
	head -c 8192 "$busybox" | LC_ALL=C grep -aq 'ld-linux' &&
		die "$busybox is dynamically linked: install busybox-static"
	sum=$( (cat "$TB_HERE/initramfs-init.sh" "$busybox"; echo "${INITRD_MODS[*]}") | sha256sum | cut -c1-16)
	INITRD=$KROOT/initrd-$sum.img
	[ -s "$INITRD" ] && return 0
	dir=$(mktemp -d "$CACHE/.initrd.XXXXXX")
	mkdir -p "$dir"/{bin,proc,sys,dev,host,lib/modules}
	cp "$busybox" "$dir/bin/busybox"
	cp "$TB_HERE/initramfs-init.sh" "$dir/init"
	chmod 755 "$dir/init"
	for m in "${INITRD_MODS[@]}"; do
		f=$(find "$KROOT/lib/modules/$KVER" -name "$m.ko*" | head -n 1)
		[ -n "$f" ] || continue # built into this kernel
		case $f in
		*.xz) xz -dc "$f" >"$dir/lib/modules/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$dir/lib/modules/$m.ko" ;;
		*) cp "$f" "$dir/lib/modules/$m.ko" ;;
		esac
	done
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp" ||
		{ rm -rf "$dir"; die "building the initramfs failed"; }
	mv "$INITRD.tmp" "$INITRD"
	rm -rf "$dir"
	# Old initramfs images of this kernel.
	find "$KROOT" -maxdepth 1 -name 'initrd-*.img' ! -name "${INITRD##*/}" -delete
}

# ---------------------------------------------------------------- accelerator

pick_accel() {
	case ${VMIG_TB_ACCEL:-auto} in
	kvm | tcg | icount) echo "$VMIG_TB_ACCEL" ;;
	auto)
		local f=$KROOT/accel-$(uname -r)
		if [ -s "$f" ]; then
			cat "$f"
		else
			local a=tcg
			probe_kvm && a=kvm
			echo "$a" >"$f" 2>/dev/null || true
			echo "$a"
		fi
		;;
	*) die "VMIG_TB_ACCEL must be kvm, tcg, icount or auto" ;;
	esac
}

probe_kvm() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	# /dev/kvm may open while KVM cannot run a guest (no nested
	# virtualisation; seen: the guest hangs without a word): boot the kernel
	# with no root and look for its banner on the serial console.
	local out
	out=$(timeout 20 qemu-system-x86_64 -accel kvm -cpu max -M pc -m 256 \
		-nodefaults -no-user-config -display none -monitor none -serial stdio \
		-kernel "$KERNEL" -append "console=ttyS0 panic=-1" -no-reboot \
		2>&1 </dev/null) || true
	case $out in
	*"Linux version"*) return 0 ;;
	esac
	return 1
}

# ---------------------------------------------------------------- processes

# Pids of the processes of this testbed: its QEMUs (their command line
# carries tb.state=$STATE) and its hub (tbhelper.py hub $STATE).
testbed_pids() {
	local f pid cl
	for f in $(grep -lzF -e tbhelper.py -e "tb.state=$STATE " /proc/[0-9]*/cmdline 2>/dev/null); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$pid" = $$ ] && continue
		cl=$(tr '\0' '\n' 2>/dev/null <"$f") || continue
		case $cl in
		*qemu-system*"tb.state=$STATE "* | *"tbhelper.py"$'\n'hub$'\n'"$STATE"$'\n'*)
			echo "$pid" ;;
		esac
	done
}

console_tail() {
	local log=$STATE/hosts/$1/console.log
	echo "---- last lines of $1's console ($log):" >&2
	if [ -s "$log" ]; then tail -n "${2:-40}" "$log" | sed 's/^/  | /' >&2; else echo "  (empty)" >&2; fi
	echo "----" >&2
}

cmd_down() {
	local pids p i
	pids=$(testbed_pids)
	[ -n "$pids" ] || { rm -f "$STATE"/net/*.sock "$STATE"/hosts/*/ready; return 0; }
	kill -TERM $pids 2>/dev/null || true
	for i in $(seq 30); do
		pids=$(testbed_pids)
		[ -n "$pids" ] || break
		sleep 0.1
	done
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	for i in $(seq 50); do
		[ -n "$(testbed_pids)" ] || break
		sleep 0.1
	done
	[ -z "$(testbed_pids)" ] || die "could not stop: $(testbed_pids)"
	rm -f "$STATE"/net/*.sock "$STATE"/hosts/*/ready
}

# ---------------------------------------------------------------- up

write_env() {
	local h=$1 n=$2 b=$VMIG_BUILD_DIR
	{
		printf 'export VMIG_SRC=%q VMIG_BUILD_DIR=%q VMIG_TESTBED_DIR=%q\n' "$VMIG_SRC" "$b" "$STATE"
		printf 'export VMIG_HOST=%q VMIG_HOST_ADDR=%q VMIG_TB_HOSTS=%q\n' "$h" "$(host_addr "$h")" "$n"
		printf 'export VMIG_TB_SCRATCH=%q VMIG_TB_SHARED=%q\n' "$STATE/hosts/$h/scratch" "$STATE/shared"
		printf 'export PATH=%q\n' "$b/tools:$b/migrd:$b/guestagent:$b/tests/apps:$b/bench:$KROOT/tbbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		printf 'export HOME=/root TMPDIR=/tmp LC_ALL=C\n'
	} >"$STATE/hosts/$h/env"
}

start_host() {
	local h=$1 i accel=$2 cpu mem=${VMIG_TB_MEM:-1024} hd=$STATE/hosts/$1
	local extra=()
	i=$(host_index "$h")
	case $accel in
	kvm) cpu=max ;;
	# the guest's clock (and TSC) counts instructions, not host time:
	# timings inside the guest no longer depend on the machine's load
	icount) accel="tcg,thread=single" cpu=max
		extra=(-icount "shift=${VMIG_TB_ICOUNT_SHIFT:-3},align=off") ;;
	*) accel="tcg,thread=multi" cpu=max ;;
	esac
	local mac
	mac=$(printf '52:54:00:77:%02x:%02x' "$((0x$(echo "$STATE" | sha256sum | cut -c1-2)))" "$i")
	(cd "$STATE" && exec setsid qemu-system-x86_64 -name "vmig-tb-$h" -M pc -accel "$accel" -cpu "$cpu" "${extra[@]}" \
		-m "$mem" -smp "${VMIG_TB_SMP:-1}" -nodefaults -no-user-config -display none -monitor none \
		-no-reboot -kernel "$KERNEL" -initrd "$INITRD" \
		-chardev "file,id=con0,path=hosts/$h/console.log" -serial chardev:con0 \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$VMIG_BUILD_DIR,mount_tag=tbbuild,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$STATE,mount_tag=tbstate,security_model=none,multidevs=remap" \
		-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=net/hub.sock" \
		-device "virtio-net-pci,netdev=n0,mac=$mac" \
		-device virtio-rng-pci \
		-append "console=ttyS0 loglevel=4 panic=-1 tb.state=$STATE tb.host=$h tb.addr=$(host_addr "$h") tb.kroot=$KROOT tb.bin=$KROOT/tbbin tb.stage2=$TB_HERE/guest-init.sh tb.keep=$TB_HERE,$VMIG_SRC,$VMIG_BUILD_DIR,$KROOT tb.mtu=${VMIG_TB_MTU:-9000} tb.build=$VMIG_BUILD_DIR " \
		</dev/null >"$hd/qemu.log" 2>&1) &
	# setsid in a non-leader subshell does not fork: $! is QEMU's pid.
	echo $! >"$hd/qemu.pid"
	# Not -daemonize: it would chdir to / and break the relative socket
	# paths (a unix socket path has at most 108 bytes, the state dir may be
	# longer). A QEMU that cannot start exits: the boot wait notices.
}

cmd_up() {
	local n=${1:-} i h t0 t1 accel timeout left pending failed=
	[[ $n =~ ^[1-4]$ ]] || die "usage: up N (N = 1..4)"
	case $STATE in *[[:space:]]*) die "the state directory must not contain spaces: $STATE" ;; esac
	case $VMIG_SRC in *[[:space:]]*) die "the checkout path must not contain spaces: $VMIG_SRC" ;; esac
	[ -z "$(testbed_pids)" ] || die "a testbed is already up in $STATE (testbed.sh down first)"
	[[ ${VMIG_TB_SMP:-1} =~ ^[1-9][0-9]?$ ]] || die "VMIG_TB_SMP must be a vCPU count (1..99), not '$VMIG_TB_SMP'"
	[[ ${VMIG_TB_ICOUNT_SHIFT:-3} =~ ^([0-9]|10)$ ]] || die "VMIG_TB_ICOUNT_SHIFT must be 0..10, not '$VMIG_TB_ICOUNT_SHIFT'"
	cmd_fetch_kernel
	accel=$(pick_accel)
	mkdir -p "$STATE" "$VMIG_BUILD_DIR"
	rm -rf "$STATE/hosts" "$STATE/net"
	mkdir -p "$STATE/net" "$STATE/shared"
	echo "$accel" >"$STATE/accel"
	echo "$n" >"$STATE/nhosts"
	for i in $(seq "$n"); do
		mkdir -p "$STATE/hosts/h$i/jobs" "$STATE/hosts/h$i/scratch"
		write_env "h$i" "$n"
	done
	t0=$(date +%s.%N)
	setsid "$PY" "$TB_HERE/tbhelper.py" hub "$STATE" "$n" "${VMIG_TB_OWNER:-}" \
		</dev/null >"$STATE/net/hub.log" 2>&1 &
	for i in $(seq 50); do
		[ -e "$STATE/net/hub.ready" ] && break
		sleep 0.1
	done
	[ -e "$STATE/net/hub.ready" ] || { cat "$STATE/net/hub.log" >&2; cmd_down; die "the segment hub did not start"; }
	for i in $(seq "$n"); do
		start_host "h$i" "$accel" || { cmd_down; die "QEMU for h$i did not start"; }
	done
	if [ "$accel" = kvm ]; then timeout=${VMIG_TB_BOOT_TIMEOUT:-60}; else timeout=${VMIG_TB_BOOT_TIMEOUT:-$((180 + 60 * n))}; fi
	left=$n
	while :; do
		pending=
		for i in $(seq "$n"); do
			h=h$i
			[ -e "$STATE/hosts/$h/ready" ] && continue
			if [ -e "$STATE/hosts/$h/failed" ]; then
				failed="$h: $(cat "$STATE/hosts/$h/failed")"
				break 2
			fi
			if ! kill -0 "$(cat "$STATE/hosts/$h/qemu.pid")" 2>/dev/null; then
				failed="$h: QEMU exited: $(tail -n 5 "$STATE/hosts/$h/qemu.log")"
				break 2
			fi
			pending+=" $h"
		done
		[ -n "$pending" ] || break
		t1=$(date +%s.%N)
		if awk -v a="$t0" -v b="$t1" -v t="$timeout" 'BEGIN { exit !(b - a > t) }'; then
			failed="${pending# }: not ready after ${timeout}s"
			break
		fi
		sleep 0.1
	done
	if [ -n "$failed" ]; then
		note "boot failed: $failed"
		h=${failed%%[: ]*}
		console_tail "$h"
		cmd_down
		exit 1
	fi
	t1=$(date +%s.%N)
	note "$(printf '%d host(s) up in %.1fs (%s): ' "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$accel")$(for i in $(seq "$n"); do printf 'h%d=%s ' "$i" "$(host_addr "h$i")"; done)"
}

# ---------------------------------------------------------------- exec, status

cmd_exec() {
	local timeout=${VMIG_TB_EXEC_TIMEOUT:-900} h
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=${2:?}; shift 2 ;;
		--timeout=*) timeout=${1#*=}; shift ;;
		*) break ;;
		esac
	done
	h=${1:-}
	[ -n "$h" ] || die "usage: exec [--timeout S] HOST -- CMD ARGS..."
	host_index "$h" >/dev/null
	shift
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || die "usage: exec [--timeout S] HOST -- CMD ARGS..."
	exec "$PY" "$TB_HERE/tbhelper.py" exec "$STATE" "$h" "$timeout" -- "$@"
}

cmd_status() {
	local d h pid state any=
	for d in "$STATE"/hosts/h*; do
		[ -d "$d" ] || continue
		any=1
		h=${d##*/}
		pid=$(cat "$d/qemu.pid" 2>/dev/null || true)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			if [ -e "$d/ready" ]; then state="up (ready at $(cat "$d/ready")s guest time)"; else state=booting; fi
		else
			state=down
		fi
		printf '%-3s %-10s pid=%-7s %s\n' "$h" "$(host_addr "$h")" "${pid:--}" "$state"
	done
	[ -n "$any" ] || echo "no testbed in $STATE"
	[ -n "$any" ] && echo "state: $STATE  accel: $(cat "$STATE/accel" 2>/dev/null)"
	return 0
}

# ---------------------------------------------------------------- main

[ $# -ge 1 ] || usage
STATE=$(realpath -m "$STATE")
VMIG_SRC=$(realpath -m "$VMIG_SRC")
VMIG_BUILD_DIR=$(realpath -m "$VMIG_BUILD_DIR")
c=$1
shift
case $c in
fetch-kernel) [ $# -eq 0 ] || usage; cmd_fetch_kernel ;;
up) [ $# -eq 1 ] || usage; cmd_up "$1" ;;
exec) cmd_exec "$@" ;;
down) [ $# -eq 0 ] || usage; cmd_down ;;
status) [ $# -eq 0 ] || usage; cmd_status ;;
console) [ $# -eq 1 ] || usage; host_index "$1" >/dev/null; cat "$STATE/hosts/$1/console.log" ;;
accel) cmd_fetch_kernel; pick_accel ;;
pids) testbed_pids ;;
-h | --help | help) usage ;;
*) note "unknown command '$c'"; usage ;;
esac
