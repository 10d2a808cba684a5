#!/bin/busybox sh
# Stage 1 of a testbed host: /init of the tiny initramfs (busybox + the
# virtio/9p modules). Mounts the build machine's / read-only over 9p at /host
# and the testbed state directory read-write at the same path inside it,
# then runs stage 2 (tests/testbed/guest-init.sh) in a chroot. Stays pid 1.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

say() { echo "TB1: $*" > /dev/console; }
fail() {
	say "FATAL: $*"
	sleep 1
	poweroff -f
}
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }

for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
	virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
	[ -e /lib/modules/$m.ko ] || continue
	insmod /lib/modules/$m.ko || say "insmod $m failed"
done

STATE=$(arg tb.state)
STAGE2=$(arg tb.stage2)
KROOT=$(arg tb.kroot)
[ -n "$STATE" ] && [ -n "$STAGE2" ] && [ -n "$KROOT" ] ||
	fail "missing tb.state/tb.stage2/tb.kroot on the kernel command line"

mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose \
	hostroot /host || fail "cannot mount the build machine's / (9p hostroot)"
mount -t proc proc /host/proc || fail "mount proc"
mount -t sysfs sys /host/sys || fail "mount sysfs"
mount -t devtmpfs dev /host/dev || fail "mount devtmpfs"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /host/dev/pts || say "mount devpts failed"
mount -t tmpfs -o mode=1777 shm /host/dev/shm || say "mount /dev/shm failed"
# /run, /tmp and /var/tmp become the host's own tmpfs; the checkout, the
# build and the kernel cache (tb.keep=A,B,..) stay visible if under them.
KEEP=$(arg tb.keep | tr ',' ' ')
for t in run tmp var/tmp; do
	[ -d /host/$t ] || continue
	mkdir -p /orig/$t
	mount --bind /host/$t /orig/$t
	mount -t tmpfs -o mode=1777 $t /host/$t || fail "mount tmpfs on /$t"
	for k in $KEEP; do
		case $k in
		/$t/*)
			mkdir -p "/host$k" && mount --bind "/orig$k" "/host$k" ||
				fail "cannot keep $k visible under the tmpfs /$t"
			;;
		esac
	done
done
chmod 755 /host/run
[ -d /host/sys/fs/cgroup ] && mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
# The build directory again, uncached: programs rebuilt while the host is up
# are seen as they are now (the loose cache of / would keep the old ones).
BUILD=$(arg tb.build)
if [ -n "$BUILD" ]; then
	mkdir -p "/host$BUILD" 2>/dev/null
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=none \
		tbbuild "/host$BUILD" || say "cannot mount $BUILD uncached (9p tbbuild)"
fi
# After the tmpfs mounts: the state directory may be under /tmp.
mkdir -p "/host$STATE" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none \
	tbstate "/host$STATE" || fail "cannot mount the state directory $STATE (9p tbstate)"

# The kernel's module auto-loading runs this path in the initramfs root (the
# kernel's root, not the chroot): hand it to the chroot's modprobe, pointed at
# the Debian kernel's modules in the cache (the build machine has none).
cat > /bin/tb-modprobe <<EOF
#!/bin/sh
exec /bin/chroot /host /sbin/modprobe -d $KROOT "\$@"
EOF
chmod 755 /bin/tb-modprobe
echo /bin/tb-modprobe > /proc/sys/kernel/modprobe

say "stage 1 done at $(cut -d' ' -f1 /proc/uptime)s"
chroot /host /bin/bash "$STAGE2" < /dev/console > /dev/console 2>&1
say "stage 2 exited with $?"
sync
poweroff -f
