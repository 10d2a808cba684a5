# Helpers for tests that run on the Soft-RoCE testbed. Source it from bash:
#
#   . "$VMIG_SRC/tests/testbed/lib.sh"
#   tb_up 2                                  # h1, h2; downed when the test exits
#   tb_exec h1 ibv_devinfo -d rxe0           # returns the command's exit code
#   tb_exec h1 my_server & srv=$!            # background: wait "$srv" for its rc
#   tb_wait_port h1 18515                    # a TCP listener in h1
#   tb_exec h2 my_client "$(tb_addr h1)"
#
# Every testbed made by tb_up has its own state directory (mktemp under
# $VMIG_BUILD_DIR), so tests are independent of each other and of a testbed
# brought up by hand. See docs/testbed.md for the full list.

TB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${VMIG_SRC:=$(cd "$TB_LIB_DIR/../.." && pwd)}"
: "${VMIG_BUILD_DIR:=$VMIG_SRC/build}"
export VMIG_SRC VMIG_BUILD_DIR
TB_SH=$TB_LIB_DIR/testbed.sh
# Default bound on one tb_exec (seconds); tb_exec_t sets it per call.
: "${TB_EXEC_TIMEOUT:=300}"
TB_FAILED=0
TB_NTEST=0

tb_log() { printf '# %s\n' "$*" >&2; }

# tb_fail MESSAGE: print it and end the test with status 1 (the EXIT trap
# shows the hosts' console tails and downs the testbed).
tb_fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# tb_up N: boot h1..hN in a fresh state directory; sets VMIG_TESTBED_DIR.
# The testbed goes down when the calling script exits, however it exits:
# an EXIT trap, and the testbed's hub as a watchdog on this shell's pid.
#
# With VMIG_TB_REUSE=1 and a testbed of at least N hosts already up in
# $VMIG_TESTBED_DIR (testbed.sh up by hand), the test uses that one and
# leaves it up: quick iterations while writing a test.
tb_up() {
	local n=$1 i
	if [ -n "${VMIG_TB_REUSE:-}" ] && [ -n "${VMIG_TESTBED_DIR:-}" ]; then
		VMIG_TESTBED_DIR=$(realpath -m "$VMIG_TESTBED_DIR")
		for i in $(seq "$n"); do
			[ -e "$VMIG_TESTBED_DIR/hosts/h$i/ready" ] || break
		done
		if [ -e "$VMIG_TESTBED_DIR/hosts/h$n/ready" ]; then
			export VMIG_TESTBED_DIR
			tb_log "testbed: reusing the hosts up in $VMIG_TESTBED_DIR"
			return 0
		fi
	fi
	mkdir -p "$VMIG_BUILD_DIR" || tb_fail "cannot create $VMIG_BUILD_DIR"
	VMIG_TESTBED_DIR=$(mktemp -d "$VMIG_BUILD_DIR/tb.XXXXXX") || tb_fail "mktemp failed"
	export VMIG_TESTBED_DIR
	export VMIG_TB_OWNER=$$
	trap '_tb_exit_trap' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	tb_log "testbed: booting $n host(s) in $VMIG_TESTBED_DIR"
	"$TB_SH" up "$n" || tb_fail "testbed up $n failed"
}

_tb_exit_trap() {
	local rc=$?
	trap - EXIT INT TERM HUP
	# Stop background tb_exec clients of this shell first.
	local j
	for j in $(jobs -p); do
		pkill -TERM -P "$j" 2>/dev/null
		kill "$j" 2>/dev/null
	done
	[ -n "${VMIG_TESTBED_DIR:-}" ] || exit "$rc"
	if [ "$rc" != 0 ]; then
		local c
		for c in "$VMIG_TESTBED_DIR"/hosts/h*/console.log; do
			[ -e "$c" ] || continue
			echo "---- last lines of ${c%/console.log}/console.log:" >&2
			tail -n 15 "$c" | sed 's/^/  | /' >&2
		done
	fi
	"$TB_SH" down || echo "testbed: down failed in $VMIG_TESTBED_DIR" >&2
	if [ "$rc" = 0 ] && [ -z "${VMIG_TB_KEEP:-}" ]; then
		rm -rf "$VMIG_TESTBED_DIR"
	else
		echo "testbed: state and logs kept in $VMIG_TESTBED_DIR" >&2
	fi
	exit "$rc"
}

# tb_down: take the testbed down now (tb_up's trap does it at exit anyway).
tb_down() { "$TB_SH" down; }

# tb_exec HOST CMD ARGS...: run CMD in HOST (cwd: the checkout; PATH: the
# built programs first), stream its output, return its exit code (124 if it
# ran past TB_EXEC_TIMEOUT seconds, 255 if the host is gone).
tb_exec() {
	local h=$1
	shift
	"$TB_SH" exec --timeout "$TB_EXEC_TIMEOUT" "$h" -- "$@"
}

# tb_exec_t SECONDS HOST CMD ARGS...: tb_exec with its own time bound.
tb_exec_t() {
	local t=$1 h=$2
	shift 2
	"$TB_SH" exec --timeout "$t" "$h" -- "$@"
}

# tb_sh HOST 'SHELL SCRIPT' [ARGS...]: run a bash script in HOST ($1.. = ARGS).
tb_sh() {
	local h=$1 s=$2
	shift 2
	tb_exec "$h" bash -c "$s" tb_sh "$@"
}

tb_addr() { echo "10.77.0.${1#h}"; }

# Writable per-host scratch directory (same path inside the host and on the
# build machine), and one shared by all hosts of the testbed.
tb_scratch() { echo "$VMIG_TESTBED_DIR/hosts/$1/scratch"; }
tb_shared() { echo "$VMIG_TESTBED_DIR/shared"; }
tb_console() { cat "$VMIG_TESTBED_DIR/hosts/$1/console.log"; }

# tb_wait_port HOST PORT [SECONDS]: wait until something listens on TCP PORT
# in HOST.
tb_wait_port() {
	local h=$1 port=$2 t=${3:-60}
	tb_exec_t "$((t + 30))" "$h" bash -c '
		end=$((SECONDS + $2))
		while [ $SECONDS -lt $end ]; do
			ss -Hltn "sport = :$1" | grep -q . && exit 0
			sleep 0.2
		done
		echo "no TCP listener on port $1 after $2 s" >&2
		exit 1' tb_wait_port "$port" "$t"
}

# tb_wait_rdma_listen HOST PORT [SECONDS]: wait until an RDMA CM id listens
# on PORT in HOST (rping, librdmacm servers).
tb_wait_rdma_listen() {
	local h=$1 port=$2 t=${3:-60}
	tb_exec_t "$((t + 30))" "$h" bash -c '
		end=$((SECONDS + $2))
		while [ $SECONDS -lt $end ]; do
			rdma resource show cm_id 2>/dev/null | grep LISTEN | grep -q "src-addr [^ ]*:$1 " && exit 0
			sleep 0.2
		done
		echo "no RDMA CM listener on port $1 after $2 s" >&2
		exit 1' tb_wait_rdma_listen "$port" "$t"
}

# tb_wait_proc HOST NAME [SECONDS]: wait until a process named NAME runs in HOST.
tb_wait_proc() {
	local h=$1 name=$2 t=${3:-60}
	tb_exec_t "$((t + 30))" "$h" bash -c '
		end=$((SECONDS + $2))
		while [ $SECONDS -lt $end ]; do
			pgrep -x "$1" >/dev/null && exit 0
			sleep 0.2
		done
		echo "no process $1 after $2 s" >&2
		exit 1' tb_wait_proc "$name" "$t"
}

# tb_wait_file PATH [SECONDS]: wait on the build machine for PATH to exist
# (a host writes it in its scratch or the shared directory).
tb_wait_file() {
	local f=$1 t=${2:-60} end
	end=$((SECONDS + t))
	while [ ! -e "$f" ]; do
		[ $SECONDS -lt "$end" ] || { tb_log "no $f after $t s"; return 1; }
		sleep 0.1
	done
}

# tb_wait_bg PID [SECONDS]: wait for a background tb_exec (started with &)
# and return its exit code; kills it (and so its job in the host) after
# SECONDS (default TB_EXEC_TIMEOUT) and returns 124.
tb_wait_bg() {
	local pid=$1 t=${2:-$TB_EXEC_TIMEOUT} end
	end=$((SECONDS + t))
	while kill -0 "$pid" 2>/dev/null; do
		if [ $SECONDS -ge "$end" ]; then
			pkill -TERM -P "$pid" 2>/dev/null
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.1
	done
	wait "$pid"
}

# TAP-style checks: tb_ok DESCRIPTION CMD ARGS... runs CMD on the build
# machine and prints "ok N - ..." or "not ok N - ..."; tb_done prints the
# plan and exits 1 if any check failed. A DESCRIPTION with "# TODO" is a
# known failure: it does not count.
tb_ok() {
	local d=$1
	shift
	TB_NTEST=$((TB_NTEST + 1))
	if "$@"; then
		echo "ok $TB_NTEST - $d"
	else
		echo "not ok $TB_NTEST - $d"
		case $d in *"# TODO"*) ;; *) TB_FAILED=$((TB_FAILED + 1)) ;; esac
	fi
}

tb_done() {
	echo "1..$TB_NTEST"
	[ "$TB_FAILED" = 0 ] || { echo "# $TB_FAILED of $TB_NTEST checks failed" >&2; exit 1; }
	exit 0
}
