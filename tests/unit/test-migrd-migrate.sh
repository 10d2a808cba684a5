#!/usr/bin/env bash
# A whole migration on loopback (TAP): two migrd with the exec backend,
# a stand-in shim (migrd-probe) as the guest, a test backend that
# "pre-dumps" rounds (2 MB, then 200 kB, each linked to its parent as CRIU
# does), "dumps" by stopping it and writing a checkpoint (several MiB, a
# subdirectory) with the last round as parent, and "restores" by checking
# the files and the whole chain and starting it again. Checks: the guest
# moves and shows up on the destination; the checkpoint and its pre-copy
# rounds arrive intact (the rounds stop early once one is small); a failed
# pre-copy round fails the migration with the guest running on the source
# and nothing left on the destination; a restore failing on the
# destination rolls back to the source;
# a destination without migrd fails in setup and changes nothing; cancel
# during the dump rolls back; bad requests leave both daemons serving.
# Usage: test-migrd-migrate.sh MIGRD VMIGRATE PROBE
set -uo pipefail

MIGRD=$1 VMIGRATE=$2 PROBE=$3
T=$(mktemp -d /tmp/vmig-migrate-XXXXXX)
. "$(dirname "$0")/tap.sh"
pids=()
finish() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$T"/h*/run/probe-*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	wait 2>/dev/null
	echo "1..$n"
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
	[ "$failed" -eq 0 ]
	exit
}
trap finish EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(port) PB=$(port) PH=$(port)
head -c 32 /dev/urandom >"$T/key"
chmod 600 "$T/key"
echo "test-token-0123456789abcdef" >"$T/token"
chmod 600 "$T/token"

# The test backend. migrd runs it as: backend pre-dump|dump GUEST DIR
# [PARENT], backend restore GUEST DIR.
cat >"$T/backend" <<'SH'
#!/bin/sh
set -eu
op=$1 guest=$2 dir=$3 parent=${4:-}
if [ -n "$parent" ]; then
	[ -f "$dir/$parent/inventory" ] || { echo "parent $parent of $dir holds nothing"; exit 1; }
	ln -s "$parent" "$dir/parent"
fi
case $op in
pre-dump)
	[ -d "$dir" ] && [ -z "$(ls -A "$dir" | grep -v '^parent$')" ] || { echo "$dir: not an empty directory"; exit 1; }
	case $guest in prefail*) [ -n "$parent" ] && { echo "CRIU pre-dump says no"; exit 1; } ;; esac
	[ -f "$VMIG_RUN_DIR/probe-$guest.pid" ] || case $guest in plain*) ;; *) echo "no process for $guest"; exit 1 ;; esac
	echo "$guest round from $VMIG_HOST" >"$dir/inventory"
	head -c "$([ -n "$parent" ] && echo 200000 || echo 2000000)" /dev/urandom >"$dir/pages.img"
	(cd "$dir" && sha256sum inventory pages.img >sums)
	echo "$guest ${parent:-first}" >>"$VMIG_RUN_DIR/pre-dumps.log"
	;;
dump)
	pidf=$VMIG_RUN_DIR/probe-$guest.pid
	case $guest in
	plain*) rm "$VMIG_RUN_DIR/guests/$guest.json" ;;
	*)
		[ -f "$pidf" ] || { echo "no process for $guest"; exit 1; }
		kill "$(cat "$pidf")"
		rm -f "$pidf"
		;;
	esac
	case $guest in slow*) sleep 2 ;; esac
	mkdir -p "$dir/pages"
	echo "$guest from $VMIG_HOST" >"$dir/inventory"
	head -c 3000000 /dev/urandom >"$dir/pages/pages-1.img"
	(cd "$dir" && sha256sum inventory pages/pages-1.img >"SUMS/sums-$guest")
	;;
restore)
	case $guest in fail*) [ "$VMIG_HOST" = hB ] && { echo "CRIU says no on $VMIG_HOST"; exit 1; } ;; esac
	(cd "$dir" && sha256sum -c --quiet "SUMS/sums-$guest") ||
		{ echo "checkpoint damaged"; exit 1; }
	# the pre-copy chain, through the parent links as CRIU follows them
	d=$dir rounds=0
	while [ -L "$d/parent" ]; do
		d=$d/$(readlink "$d/parent")
		(cd "$d" && sha256sum -c --quiet sums) || { echo "round $d damaged"; exit 1; }
		rounds=$((rounds + 1))
	done
	echo "$guest restored with $rounds rounds" >>"$VMIG_RUN_DIR/chain.log"
	case $guest in
	plain*)
		mkdir -p "$VMIG_RUN_DIR/guests"
		echo "{\"name\":\"$guest\",\"state\":\"running\"}" >"$VMIG_RUN_DIR/guests/$guest.json"
		;;
	*) setsid "$PROBE" shim "$guest" >>"$VMIG_RUN_DIR/probe.log" 2>&1 </dev/null & ;;
	esac
	;;
moved)
	echo "$guest via $dir" >>"$VMIG_RUN_DIR/moved.log"
	;;
*)
	echo "unknown operation $op"
	exit 2
	;;
esac
SH
sed -i -e "s|\"\$PROBE\"|$PROBE|" -e "s|SUMS/|$T/|" "$T/backend"
chmod +x "$T/backend"

for h in A B; do
	mkdir -p "$T/h$h"
	cat >"$T/h$h/conf" <<CONF
host = h$h
listen = 127.0.0.1
port = $([ $h = A ] && echo "$PA" || echo "$PB")
run_dir = $T/h$h/run
image_dir = $T/h$h/images
key_file = $T/key
backend = exec
backend_exec = $T/backend
forward_timeout_ms = 3000
drain_timeout_ms = 3000
restore_timeout_ms = 10000
$([ $h = A ] && echo "precopy_rounds = 3")
peer.hA = 127.0.0.1:$PA
peer.hB = 127.0.0.1:$PB
peer.hC = 127.0.0.1:1
$([ $h = A ] && printf 'http_listen = 127.0.0.1:%s\nhttp_token_file = %s\n' "$PH" "$T/token")
CONF
	VMIG_LOG_LEVEL=info "$MIGRD" --config "$T/h$h/conf" --foreground \
		2>"$T/h$h/log" &
	pids+=($!)
done
for i in $(seq 100); do
	[ -S "$T/hA/run/migrd-api.sock" ] && [ -S "$T/hB/run/migrd-api.sock" ] && break
	sleep 0.05
done
A="$VMIGRATE --socket $T/hA/run/migrd-api.sock"
B="$VMIGRATE --socket $T/hB/run/migrd-api.sock"

start_guest() { # HOST GUEST
	VMIG_RUN_DIR=$T/h$1/run setsid "$PROBE" shim "$2" >>"$T/h$1/probe.log" 2>&1 </dev/null &
	for i in $(seq 100); do
		$([ "$1" = A ] && echo "$A" || echo "$B") list 2>/dev/null | grep -q "^$2 " && return 0
		sleep 0.05
	done
	return 1
}
on() { # HOST GUEST: the guest is listed on that host
	$([ "$1" = A ] && echo "$A" || echo "$B") list 2>/dev/null | grep -q "^$2 "
}

check "guest web1 starts on hA" start_guest A web1
# an API client that only listens: it must see the events
python3 - "$T/hA/run/migrd-api.sock" "$T/events" <<'PY' &
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
f.write('{"execute":"qmp_capabilities"}\n'); f.flush()
f.readline()
out = open(sys.argv[2], "w")
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(30)
while True:
    line = f.readline()
    if not line:
        break
    out.write(line); out.flush()
    e = json.loads(line)
    if e.get("event") == "MIGRATION" and e["data"]["status"] in ("completed", "failed"):
        break
PY
evpid=$!
for i in $(seq 200); do [ -e "$T/events.ready" ] && break; sleep 0.05; done
out=$($A web1 hB 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "vmigrate web1 hB: exit 0" [ $rc -eq 0 ]
check "... reports completed" grep -q "completed" <<<"$out"
check "web1 now runs on hB" on B web1
check "web1 is gone from hA" bash -c "! $A list | grep -q '^web1 '"
check "the 3 MB checkpoint arrived intact (restore verified it)" \
	grep -q "restored from" "$T/hB/log"
check "no checkpoint left behind on either host" \
	bash -c "[ -z \"\$(ls -A '$T/hA/images' '$T/hB/images' 2>/dev/null | grep -v ':\$')\" ]"
j=$($A --json status web1)
check "status: every phase has a time" python3 -c '
import json, sys
m = json.loads(sys.argv[1])
want = ["setup", "precopy", "suspend", "teardown", "dump", "transfer", "restore", "reconnect", "resume"]
assert m["status"] == "completed", m
assert all(p in m["phase-times-ms"] for p in want), m["phase-times-ms"]
assert m["bytes-sent"] > 3000000, m["bytes-sent"]
assert m["processes"] == 1
' "$j"

wait $evpid
check "events: MIGRATION for every phase, in order, then completed" python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
ph = [e["data"]["phase"] for e in ev if e["event"] == "MIGRATION"]
want = ["setup", "precopy", "suspend", "teardown", "dump", "transfer", "restore", "reconnect", "resume", "completed"]
ok = ph == want
print("# phases seen:", " ".join(ph))
sys.exit(0 if ok else 1)
' "$T/events"
check "events: PROCESS_GONE for web1's process when it left hA" python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert any(e["event"] == "PROCESS_GONE" and e["data"]["guest"] == "web1" and e["data"]["host"] == "hA" for e in ev), ev
' "$T/events"
check "events: MIGRATION_PROGRESS during the transfer, up to every byte" python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
pr = [e["data"] for e in ev if e["event"] == "MIGRATION_PROGRESS"]
assert pr and pr[-1]["bytes-remaining"] == 0 and pr[-1]["bytes-sent"] > 3000000, pr
assert all("timestamp" in e for e in ev)
' "$T/events"

check "pre-copy: 2 rounds (3 allowed, the second one small ends them)" python3 -c '
import json, sys
m = json.loads(sys.argv[1])
assert m["precopy-rounds"] == 2, m
rb = m["precopy-round-bytes"]
print("# precopy-round-bytes", rb, "precopy-bytes", m["precopy-bytes"])
assert len(rb) == 2 and rb[0] > 2000000 and 200000 < rb[1] < 300000, rb
assert m["precopy-bytes"] == sum(rb)
assert m["bytes-sent"] > 3000000 + sum(rb), m["bytes-sent"]
' "$j"
check "hB restored web1 from the final dump with both rounds behind it" \
	grep -q "web1 restored with 2 rounds" "$T/hB/run/chain.log"
check "rounds: the first without parent, the second on the first" \
	bash -c "grep -q '^web1 first' '$T/hA/run/pre-dumps.log' && grep -q '^web1 ../pre-1' '$T/hA/run/pre-dumps.log'"
check "events: MIGRATION_PROGRESS during the pre-copy too" python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
pr = [e["data"] for e in ev if e["event"] == "MIGRATION_PROGRESS" and e["data"]["phase"] == "precopy"]
assert pr and pr[-1]["bytes-remaining"] == 0, pr
' "$T/events"

# a pre-copy round fails: nothing was suspended, the guest runs on
check "guest prefail1 starts on hA" start_guest A prefail1
out=$($A prefail1 hB 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "pre-dump failing in round 2: exit 1" [ $rc -eq 1 ]
check "... the reason names the round and the guest runs on the source" \
	grep -q "pre-copy round 2: .*CRIU pre-dump says no.*runs on the source" <<<"$out"
j=$($A --json status prefail1)
check "failed-phase is precopy, 1 round counted, no downtime" python3 -c '
import json, sys
m = json.loads(sys.argv[1])
assert m["failed-phase"] == "precopy" and m["precopy-rounds"] == 1, m
assert m["downtime-ms"] == 0, m
' "$j"
check "prefail1 runs on hA, its process never stopped" \
	bash -c "$A list | grep -q '^prefail1 ' && kill -0 \$(cat '$T/hA/run/probe-prefail1.pid')"
check "hB dropped the round it had received" \
	bash -c "[ ! -e '$T/hB/images/in-prefail1' ] && grep -q 'incoming guest prefail1 dropped' '$T/hB/log'"
check "hA kept no rounds of prefail1" bash -c "[ ! -e '$T/hA/images/out-prefail1' ]"

# and back again
out=$($B web1 hA 2>&1)
check "vmigrate web1 back to hA: exit 0" [ $? -eq 0 ]
check "web1 runs on hA again" on A web1

# the destination's restore fails: the guest comes back to the source
check "guest fail1 starts on hA" start_guest A fail1
out=$($A fail1 hB 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "restore failing on hB: exit 1" [ $rc -eq 1 ]
check "... the reason is CRIU's and the guest runs on the source" \
	grep -q "CRIU says no on hB.*runs on the source" <<<"$out"
check "fail1 runs on hA again" on A fail1
check "nothing of fail1 on hB" bash -c "! $B list | grep -q '^fail1 '"

# no migrd at the destination: refused in setup, nothing touched
out=$($A web1 hC 2>&1)
rc=$?
check "destination without migrd: exit 1, failed in setup" \
	bash -c "[ $rc -eq 1 ] && grep -q 'cannot connect' <<<'$out'"
check "web1 still on hA" on A web1
j=$($A --json status web1)
check "failed-phase is setup" grep -q '"failed-phase": "setup"' <<<"$j"

# cancel while dumping
check "guest slow1 starts on hA" start_guest A slow1
$A --no-wait slow1 hB >/dev/null
sleep 0.7
out=$($A cancel slow1 2>&1)
check "cancel accepted" [ $? -eq 0 ]
for i in $(seq 100); do
	$A status slow1 | grep -q "cancelled" && break
	sleep 0.1
done
out=$($A status slow1)
echo "$out" | sed 's/^/# /'
check "slow1 ends cancelled, back on the source" grep -q "cancelled.*" <<<"$out"
check "slow1 runs on hA" on A slow1

# a process guest without any shim (no RDMA): a plain checkpoint move
mkdir -p "$T/hA/run/guests"
echo '{"name":"plain1","state":"running"}' >"$T/hA/run/guests/plain1.json"
check "a shim-less guest is listed with 0 processes" bash -c "$A list | grep -q '^plain1 *0 '"
out=$($A plain1 hB 2>&1)
check "vmigrate plain1 hB: exit 0" [ $? -eq 0 ]
check "plain1 is recorded on hB now" bash -c "$B list | grep -q '^plain1 '"
check "hA routes plain1 to hB now (backend 'moved')" grep -q "plain1 via 127.0.0.1" "$T/hA/run/moved.log"
check "hA tried to tell hC too, and says it could not" grep -q "plain1: telling hC about the move" "$T/hA/log"

# the API over HTTP, for schedulers: bearer token, POST /api
http() { # METHOD PATH TOKEN BODY -> "CODE BODY"
	python3 - "$PH" "$@" <<'PY'
import http.client, sys
port, method, path, token, body = sys.argv[1:6]
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
h = {"Content-Type": "application/json"}
if token:
    h["Authorization"] = "Bearer " + token
c.request(method, path, body=body if method == "POST" else None, headers=h)
r = c.getresponse()
print(r.status, r.read().decode().strip())
PY
}
TOK=test-token-0123456789abcdef
out=$(http POST /api "$TOK" '{"execute":"list-guests","id":3}')
echo "# $out"
check "HTTP: list-guests with the token: 200 and the QMP reply" \
	grep -q '^200 {"return":\[.*"name":"web1".*"id":3}' <<<"$out"
out=$(http POST /api "" '{"execute":"list-guests"}')
check "HTTP: no token: 401" grep -q '^401 ' <<<"$out"
out=$(http POST /api "wrong-token-0123456789abcdef" '{"execute":"list-guests"}')
check "HTTP: wrong token: 401" grep -q '^401 ' <<<"$out"
out=$(http GET /api "$TOK" '')
check "HTTP: GET: 405" grep -q '^405 ' <<<"$out"
out=$(http POST /other "$TOK" '{}')
check "HTTP: another path: 404" grep -q '^404 ' <<<"$out"
out=$(http POST /api "$TOK" '{"execute":')
check "HTTP: malformed JSON: 200 with a GenericError" grep -q '^200 {"error":{"class":"GenericError"' <<<"$out"
out=$(http POST /api "$TOK" '{"execute":"query-migrate","arguments":{"guest":"web1"}}')
check "HTTP: query-migrate works" grep -q "\"guest\":\"web1\".*phase-times-ms" <<<"$out"
check "hA logged the refused HTTP requests" grep -q "refused an HTTP request" "$T/hA/log"

# bad input does not hurt
out=$($A nosuch hB 2>&1)
check "unknown guest: exit 4" [ $? -eq 4 ]
out=$($A web1 hA 2>&1)
check "migrate to itself: exit 4" [ $? -eq 4 ]
check "both daemons still serve" bash -c "$A list >/dev/null && $B list >/dev/null"
check "hB logged the incoming guests" grep -q "coming from hA" "$T/hB/log"
