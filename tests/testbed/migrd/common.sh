# Helpers for migrd's testbed tests (sourced): the shim tests' helpers
# (../shim/common.sh: TAP, tb_exec with the staged tools, script, listening)
# on a testbed of their own (testbed-migrd), vmigrate and vmig-guest staged
# too, and a cluster of migrd daemons:
#
#   migrd_conf "$W/migrd.conf" 3 "drain_timeout_ms = 8000"   # peers h1..h3
#   migrd_start h1 h2 h3                                      # a TAP line each
export VMIG_TESTBED_DIR=${VMIG_TESTBED_DIR:-${VMIG_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build}/testbed-migrd}
. "$(dirname "${BASH_SOURCE[0]}")/../shim/common.sh"
cp "$BUILD/tools/vmigrate" "$BUILD/tools/vmig-guest" "$STAGE/"

# migrd_conf FILE NHOSTS ["KEY = VALUE"...]: writes a migrd config for the
# peers h1..hNHOSTS (10.77.0.N), with the cluster key $W/cluster.key (made
# on first use), the CRIU backend and timeouts that suit TCG hosts; each
# "KEY = VALUE" argument replaces that key's default or adds the key.
migrd_conf() {
	local file=$1 n=$2 i
	shift 2
	if [ ! -e "$W/cluster.key" ]; then
		head -c 32 /dev/urandom >"$W/cluster.key"
		chmod 600 "$W/cluster.key"
	fi
	{
		cat <<EOT
port = 7410
run_dir = /run/vmig
image_dir = /run/vmig/images
key_file = $W/cluster.key
backend = exec
backend_exec = $BUILD/migrd/backend-criu.sh
forward_timeout_ms = 60000
connect_timeout_ms = 15000
drain_timeout_ms = 30000
restore_timeout_ms = 240000
EOT
		for i in $(seq "$n"); do echo "peer.h$i = 10.77.0.$i"; done
	} | awk -F' *= *' -v over="$(printf '%s\n' "$@")" '
		BEGIN {
			m = split(over, l, "\n")
			for (i = 1; i <= m; i++)
				if (split(l[i], kv, / *= */) == 2)
					o[kv[1]] = l[i]
		}
		$1 in o { print o[$1]; delete o[$1]; next }
		{ print }
		END { for (k in o) print o[k] }' >"$file"
}

# migrd_start HOST...: starts migrd (log level info, its log in
# $W/migrd-HOST.log, its pid in the host's /run/vmig/migrd.pid) on each
# HOST with the config $W/migrd.conf, one TAP line each. The script it runs,
# $W/migrd.sh [CONFIG], restarts one with another config.
migrd_start() {
	local h m
	m=$(script migrd.sh <<EOT
#!/bin/bash
mkdir -p /run/vmig
mount -t devpts devpts /dev/pts 2>/dev/null
VMIG_LOG_LEVEL=info migrd --config \${1:-$W/migrd.conf} --host \$(hostname) 2>>$W/migrd-\$(hostname).log </dev/null || exit 1
pgrep -x migrd > /run/vmig/migrd.pid
EOT
	)
	for h in "$@"; do
		tb_exec "$h" "$m"
		ok $? "migrd started on $h"
	done
}

# stress_verdicts WAIT_S: once rdma_stress ended in guest rs-a (the client,
# back on h1 at the end of every test here) and in rs-b on h3, their guest
# logs in $W/rs-a.log and $W/rs-b.log and both verdict lines in
# $W/verdicts. Waits up to WAIT_S seconds for the client's. CRC is 0 when
# the client's verdict says result=ok.
stress_verdicts() {
	local i
	CRC=1
	for i in $(seq "$1"); do
		if tb_exec h1 cat /run/vmig/guests/rs-a.log > "$W/rs-a.log" 2>&1 &&
		   grep -q "rdma_stress: sent=" "$W/rs-a.log"; then
			grep -q "result=ok" "$W/rs-a.log" && CRC=0
			break
		fi
		sleep 2
	done
	tb_exec h3 cat /run/vmig/guests/rs-b.log > "$W/rs-b.log" 2>&1
	grep -h "rdma_stress: sent=" "$W/rs-a.log" "$W/rs-b.log" > "$W/verdicts"
	diag < "$W/verdicts"
}

# guest_route NAME HOME ADDR: on the hosts h1..h3 other than HOME, the
# address ADDR of guest NAME routed through HOME, where it is about to run.
guest_route() {
	local name=$1 home=$2 addr=$3 h
	for h in h1 h2 h3; do
		[ "$h" = "$home" ] && continue
		tb_exec "$h" vmig-guest route "$name" "10.77.0.${home#h}" \
			--addr "$addr" | diag
	done
}
