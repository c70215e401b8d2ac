#!/bin/bash
# The one test entry: cmocka unit tests, then every tests/integ/t-*.sh under
# a reaping subreaper.  Ends with "N passed, N failed[, N skipped]".
#   KUP=path/to/kup PROGS=dir TESTBIN=dir tests/run.sh [PATTERN]
set -u
cd "$(dirname "$0")/.."
export KUP=${KUP:-build/kup} PROGS=${PROGS:-build/progs} TESTBIN=${TESTBIN:-build/tests}
export KUP=$(readlink -f "$KUP") PROGS=$(readlink -f "$PROGS")
pattern=${1:-}
pass=0 fail=0 skip=0
log=$(mktemp -d /tmp/kup-tests.XXXXXX)

# ASan: kup forks tasks that become other programs; leaks there are not ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

count_tap() {	# file -> sets p f s
	p=$(grep -c '^ok ' "$1" || true)
	f=$(grep -c '^not ok ' "$1" || true)
	s=$(grep -c '^# SKIP' "$1" || true)
}

for t in "$TESTBIN"/test-*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	[ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
	out=$log/$name.log
	CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 600 "$t" > "$out" 2>&1
	rc=$?
	count_tap "$out"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f))
	echo "$name: $p passed, $f failed"
	[ "$f" -gt 0 ] && { grep -E '^not ok|error|Error' "$out" | head -20; tail -20 "$out"; }
done

for t in tests/integ/t-*.sh; do
	name=$(basename "$t" .sh)
	[ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
	out=$log/$name.log
	timeout -k 10 ${TEST_TIMEOUT:-300} "$PROGS/reaper" bash "$t" > "$out" 2>&1 < /dev/null
	rc=$?
	count_tap "$out"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited with status $rc" >> "$out"; fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	echo "$name: $p passed, $f failed${s:+, $s skipped}" | sed 's/, 0 skipped//'
	if [ "$f" -gt 0 ]; then echo "---- $name log (tail) ----"; tail -40 "$out"; echo "----"; fi
done
rm -rf "$log"
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
