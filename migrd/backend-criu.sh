#!/bin/sh
# migrd's exec backend for process guests: CRIU through vmig-guest.
#   backend-criu.sh pre-dump GUEST DIR [PARENT]
#                                       a pre-copy round into DIR while the
#                                       guest (and its RDMA) runs; PARENT is
#                                       the previous round, relative to DIR
#   backend-criu.sh dump GUEST DIR [PARENT]
#                                       checkpoint the guest into DIR
#   backend-criu.sh restore GUEST DIR   restore it from DIR on this host
#   backend-criu.sh prepare GUEST DIR   it is coming here into DIR (migrd
#                                       runs this detached, output ignored)
#   backend-criu.sh moved GUEST ADDR    it runs on host ADDR now: route there
# migrd sets VMIG_RUN_DIR and VMIG_HOST. The last line of output is the
# error migrd reports when this fails.
set -eu
[ $# -eq 3 ] || { [ $# -eq 4 ] && { [ "$1" = dump ] || [ "$1" = pre-dump ]; }; } ||
	{ echo "usage: $0 pre-dump|dump GUEST DIR [PARENT] | restore|prepare GUEST DIR | moved GUEST ADDR" >&2; exit 2; }
# no subshells or dirname: each fork and exec is in the downtime of a dump
# and of a restore (0.1 s and more on the testbed)
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
vg=
for c in "$here/../tools/vmig-guest" "$here/vmig-guest"; do
	[ -x "$c" ] && { vg=$c; break; }
done
[ -n "$vg" ] || vg=$(command -v vmig-guest) ||
	{ echo "vmig-guest not found" >&2; exit 127; }
case $1 in
pre-dump) exec "$vg" pre-dump "$2" "$3" ${4:+--parent "$4"} ;;
dump) exec "$vg" checkpoint "$2" "$3" ${4:+--parent "$4"} ;;
restore) exec "$vg" restore "$2" "$3" ;;
# CRIU's first run after boot probes the kernel for seconds (kerndat, kept
# in /run/criu.kdat): have it done now rather than in the restore, which
# runs while the guest is down. Any command probes first; this one is quick.
prepare) [ -e /run/criu.kdat ] || criu check --feature mnt_id >/dev/null 2>&1 || true ;;
moved) exec "$vg" route "$2" "$3" ;;
*) echo "unknown operation $1" >&2; exit 2 ;;
esac
