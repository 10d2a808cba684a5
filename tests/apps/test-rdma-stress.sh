#!/usr/bin/env bash
# rdma_stress between h1 and h2 over rxe0 (no shim): every op (RC SEND/RECV,
# RDMA WRITE, READ, atomics, UD), both posting APIs and both CQ polling
# APIs, then a timed loopback run on one host. Every run must end with
# lost=0 duplicated=0 reordered=0 corrupted=0 errors=0 on both sides.
#
# Needs the testbed (tests/testbed/lib.sh); prints TAP.
set -uo pipefail
. "${VMIG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/testbed/lib.sh"

ITERS=${STRESS_ITERS:-100}
CLEAN='lost=0 duplicated=0 reordered=0 corrupted=0 .* atomic_bad=0 errors=0 .*result=ok'

# pair NAME PORT "SERVER ARGS" "CLIENT ARGS": server on h1, client on h2.
pair() {
	local name=$1 port=$2 sargs=$3 cargs=$4 log out crc src
	log=$(tb_scratch h1)/server-$port.log
	# shellcheck disable=SC2086
	tb_exec h1 rdma_stress -d rxe0 -g 1 -p "$port" $sargs >"$log" 2>&1 &
	srv=$!
	tb_wait_port h1 "$port" 120 || tb_fail "$name: the server did not listen"
	# shellcheck disable=SC2086
	out=$(tb_exec h2 rdma_stress -d rxe0 -g 1 -p "$port" $cargs "$(tb_addr h1)" 2>&1)
	crc=$?
	tb_wait_bg "$srv" 300
	src=$?
	echo "$out" | sed "s/^/# $name client: /"
	sed "s/^/# $name server: /" "$log"
	tb_ok "$name: client exits 0" [ "$crc" = 0 ]
	tb_ok "$name: server exits 0" [ "$src" = 0 ]
	tb_ok "$name: client reports clean traffic" grep -q "^rdma_stress: sent=[1-9].*$CLEAN" <<<"$out"
	tb_ok "$name: server reports clean traffic" grep -q "^rdma_stress: sent=[1-9].*$CLEAN" "$log"
}

tb_up 2

pair classic 18520 "" "-n $ITERS"
pair wr-cqex 18521 "--api wr --cq ex" "-n $ITERS --api wr --cq ex"
pair mixed-api 18522 "--cq ex" "-n $ITERS --api wr -q 3 -s 3000 -r 8 -k 1"
pair close-chan 18523 "" "-n $ITERS --close-chan --ops send,write,ud -r 4"

# One host, client and server over the same rxe0, timed, with pauses.
log=$(tb_scratch h1)/loop.log
out=$(tb_sh h1 '
	rdma_stress -d rxe0 -p 18530 >"$1" 2>&1 &
	srv=$!
	rdma_stress -d rxe0 -p 18530 -t 5 --pause-ms 20 -q 4 --ops send,write,read,atomic,ud 127.0.0.1
	crc=$?
	wait $srv
	src=$?
	echo "exit codes: client $crc server $src"
	[ $crc = 0 ] && [ $src = 0 ]' "$log" 2>&1)
lrc=$?
echo "$out" | sed 's/^/# loopback client: /'
sed 's/^/# loopback server: /' "$log"
tb_ok "loopback: both sides exit 0" [ "$lrc" = 0 ]
tb_ok "loopback: client reports clean traffic" grep -q "^rdma_stress: sent=[1-9].*$CLEAN" <<<"$out"
tb_ok "loopback: server reports clean traffic" grep -q "^rdma_stress: sent=[1-9].*$CLEAN" "$log"

# The checks themselves: a skipped sequence number and a wrong rkey must
# fail both sides, and be reported as such.
out=$(tb_sh h1 '
	rdma_stress -p 18531 >"$1" 2>&1 &
	srv=$!
	rdma_stress -p 18531 -n 30 --inject seqgap 127.0.0.1
	crc=$?
	wait $srv
	echo "exit codes: client $crc server $?"' "$log" 2>&1)
echo "$out" | sed 's/^/# seqgap client: /'
sed 's/^/# seqgap server: /' "$log"
tb_ok "seqgap: both sides exit 1" grep -q "exit codes: client 1 server 1" <<<"$out"
tb_ok "seqgap: the receiver counts it reordered" grep -q "reordered=1 .*result=FAILED" "$log"
out=$(tb_sh h1 '
	rdma_stress -p 18532 >"$1" 2>&1 &
	srv=$!
	rdma_stress -p 18532 -n 30 --inject rkey --close-chan 127.0.0.1
	crc=$?
	wait $srv
	echo "exit codes: client $crc server $?"' "$log" 2>&1)
echo "$out" | sed 's/^/# rkey client: /'
sed 's/^/# rkey server: /' "$log"
tb_ok "rkey: both sides exit 1" grep -q "exit codes: client 1 server 1" <<<"$out"
tb_ok "rkey: the writer prints the failed completion" grep -q "send completion failed .*remote access error" <<<"$out"

# Bad arguments: usage and exit 2, in the host as on the build machine.
tb_exec h1 rdma_stress --ops bogus >/dev/null 2>&1
tb_ok "bad --ops exits 2" [ $? = 2 ]

tb_done
