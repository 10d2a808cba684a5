# TAP helpers for the unit suite's shell tests: source it, then
# ok/nok/check DESCRIPTION [CMD...]; print "1..$n" and test $failed at the end.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
