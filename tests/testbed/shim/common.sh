# Helpers for the shim's testbed tests (sourced). A test uses the testbed in
# $VMIG_TESTBED_DIR when its hosts are up, or boots its own and takes it
# down at exit. Each test prints TAP.
set -u
SRC=${VMIG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
BUILD=${VMIG_BUILD_DIR:-$SRC/build}
export VMIG_SRC=$SRC VMIG_BUILD_DIR=$BUILD
TB="$SRC/tests/testbed/testbed.sh"
# The state must be visible at the same path in the hosts (not /tmp).
export VMIG_TESTBED_DIR=${VMIG_TESTBED_DIR:-$BUILD/testbed-shim}
# Per-test scratch, shared with the hosts through the state directory.
W=$VMIG_TESTBED_DIR/shim-$(basename "$0" .sh)-$$
mkdir -p "$W"
# The hosts see the build tree over 9p and may keep stale pages of files
# rebuilt since they booted: run fresh copies of the shim and its tools.
mkdir -p "$W/stage/bin" "$W/stage/lib/verbs"
cp "$BUILD/lib/verbs/libvmig-verbs.so" "$W/stage/lib/verbs/"
cp "$BUILD/tools/vmig-run" "$BUILD/tools/vmig-ctl" "$W/stage/bin/"
for f in migrd/migrd tests/apps/rdma_stress; do
	[ -e "$BUILD/$f" ] && cp "$BUILD/$f" "$W/stage/bin/"
done
STAGE=$W/stage/bin
T_N=0
T_FAIL=0
T_OWN=

ok() {	# ok COND-RC DESCRIPTION
	T_N=$((T_N + 1))
	if [ "$1" = 0 ]; then echo "ok $T_N - $2"; else echo "not ok $T_N - $2"
		# a TAP TODO is expected to fail: it does not fail the test
		case $2 in *"# TODO"*) ;; *) T_FAIL=$((T_FAIL + 1)) ;; esac
	fi
}
diag() { sed 's/^/# /'; }

tb_need() {	# tb_need N: hosts h1..hN up
	local n=$1 i
	for i in $(seq "$n"); do
		if ! "$TB" status 2>/dev/null | grep -q "^h$i .*up"; then
			"$TB" down >/dev/null 2>&1 || true
			"$TB" up "$n" >&2 || { echo "Bail out! testbed did not boot"; exit 1; }
			T_OWN=1
			break
		fi
	done
}

tb_exec() {	# tb_exec HOST CMD...: runs in the host with the shim's env
	local h=$1
	shift
	"$TB" exec "$h" -- env VMIG_RUN_DIR=/run/vmig PATH="$STAGE:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
}

# listening HOST PORT [PROC]: wait (up to 120 s) until a server listens on
# PORT in HOST, over TCP (the pingpongs' and perftest's exchange) or as an
# RDMA CM id (rping, rdma_server); with PROC, in the network namespace of
# the first process named PROC (a guest's). Those clients do not retry a
# refused connect, and a fixed head start was not always enough on a loaded
# machine.
listening() {
	tb_exec "$1" bash -c '
		for i in $(seq 600); do
			ns=
			if [ -n "$2" ]; then
				pid=$(pgrep -x "$2" | head -n 1)
				[ -n "$pid" ] && ns="nsenter -t $pid -n"
			fi
			if [ -z "$2" ] || [ -n "$ns" ]; then
				$ns ss -Hltn "sport = :$1" | grep -q . && exit 0
				rdma resource show cm_id 2>/dev/null | grep LISTEN |
					grep -q "src-addr [^ ]*:$1 " && exit 0
			fi
			sleep 0.2
		done
		echo "nothing listens on port $1 after 120 s"
		exit 1' listening "$2" "${3:-}"
}

# Writes a script for the hosts: script NAME <<'EOF' ... EOF; prints its path.
script() {
	cat > "$W/$1"
	chmod +x "$W/$1"
	echo "$W/$1"
}

t_done() {
	echo "1..$T_N"
	[ -z "$T_OWN" ] || "$TB" down >/dev/null 2>&1 || true
	[ "$T_FAIL" = 0 ]
}
