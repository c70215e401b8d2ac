#!/bin/bash
# The one test entry: the cmocka unit tests in $TESTBIN, then every
# tests/integ/t-*.sh under tests/progs/reaper (a child subreaper that reaps
# orphans and kills what a test leaves behind).  Ends with exactly one line
# "N passed, N failed" (", N skipped" when some were) and exits non-zero if
# anything failed.
#
#   KUP=path/to/kup PROGS=dir TESTBIN=dir tests/run.sh [PATTERN]
#
# PATTERN (a shell glob fragment) selects unit test binaries and scripts by
# name.  TEST_TIMEOUT (seconds, default 300) limits each integration script,
# UNIT_TIMEOUT (default 600) each unit test binary.  Logs of failed tests are
# shown (tail); all logs are kept in $TEST_LOGS if set.
set -u
cd "$(dirname "$0")/.."
KUP=${KUP:-build/kup} PROGS=${PROGS:-build/progs} TESTBIN=${TESTBIN:-build/tests}
KUP=$(readlink -f "$KUP") PROGS=$(readlink -f "$PROGS")
export KUP PROGS TESTBIN
pattern=${1:-}
pass=0 fail=0 skip=0

if [ -n "${TEST_LOGS:-}" ]; then
	log=$TEST_LOGS
	mkdir -p "$log"
else
	log=$(mktemp -d /tmp/kup-tests.XXXXXX)
	trap 'rm -rf "$log"' EXIT
fi

# ASan: kup creates tasks that become other programs; their leaks are not
# kup's.  UBSan: every report is fatal and shows where.
# one write(2) per line from the tests' Python programs (tests/lib.sh)
unset PYTHONUNBUFFERED
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# count OUT RC: add the TAP results of one test's output to the totals.
#   "ok ..." passes (with "# SKIP" in it, it is a skip), "not ok ..." fails
#   (with "# TODO" in it, it is a known failure, counted as skipped);
#   a non-zero exit with no "not ok" is one failure; an exit 0 that printed
#   "# SKIP reason" and no result is one skip; an exit 0 with no result at
#   all is one failure (it tested nothing); fewer results than a "1..N" plan
#   is one failure.
count() {
	local out=$1 rc=$2 p f s plan todo
	p=$(grep -cE '^ok ' "$out")
	s=$(grep -cE '^ok .*# *SKIP' "$out")
	p=$((p - s))
	f=$(grep -cE '^not ok ' "$out")
	todo=$(grep -cE '^not ok .*# *TODO' "$out")
	f=$((f - todo)) s=$((s + todo))
	plan=$(sed -n 's/^1\.\.\([0-9]\+\).*/\1/p' "$out" | tail -n 1)
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		case $rc in
		124) why="timed out" ;;
		12[5-7]) why="could not run (status $rc)" ;;
		*) why="exited with status $rc$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")" ;;
		esac
		echo "not ok - $name $why" >> "$out"
	elif [ "$rc" -eq 0 ] && [ $((p + f + s)) -eq 0 ]; then
		if grep -qE '^# *SKIP' "$out"; then
			s=1
		else
			f=1
			echo "not ok - $name printed no result" >> "$out"
		fi
	elif [ -n "$plan" ] && [ $((p + f + s)) -lt "$plan" ]; then
		echo "not ok - $name planned $plan results, printed $((p + f + s))" >> "$out"
		f=$((f + 1))
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	printf '%-28s %3d passed, %d failed%s\n' "$name" "$p" "$f" \
		"$([ "$s" -gt 0 ] && echo ", $s skipped$(grep -m1 -oE '# *SKIP.*' "$out" | sed 's/^# *SKIP */: /')")"
	[ "$todo" -gt 0 ] && grep -E '^not ok .*# *TODO' "$out"
	if [ "$f" -gt 0 ]; then
		echo "---- $name: failures ----"
		grep -E '^not ok' "$out"
		echo "---- $name: log tail ----"
		tail -n 40 "$out"
		echo "----"
	fi
}

# Unit tests (cmocka, TAP output).
units=0
for t in "$TESTBIN"/test-*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	[ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
	units=$((units + 1))
	out=$log/$name.log
	CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "${UNIT_TIMEOUT:-600}" "$t" > "$out" 2>&1 < /dev/null
	count "$out" $?
done
[ -z "$pattern" ] && [ "$units" -eq 0 ] && echo "# no unit test binaries in $TESTBIN"

# Integration tests, each under the reaper.
reaper=$PROGS/reaper
if [ ! -x "$reaper" ]; then
	echo "# $reaper is missing (make progs): running the scripts without it"
	reaper=
fi
for t in tests/integ/t-*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	[ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
	out=$log/$name.log
	timeout -k 10 "${TEST_TIMEOUT:-300}" $reaper bash "$t" > "$out" 2>&1 < /dev/null
	count "$out" $?
done

if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
