#!/bin/bash
# Everything `make check` runs, with one total at the end:
#   1. tests/run.sh: the unit tests and tests/integ/*.sh on this machine
#      (with the ASan/UBSan build given in KUP, PROGS, TESTBIN);
#   2. tests/vm/run-lab-tests.sh: the QEMU lab tests (real kexecs between
#      Debian kernels in a guest; the guest is built and cached on first use,
#      a few minutes): the core set listed in tests/vm/core-tests, so that a
#      CI run stays under an hour; KUP_LAB=all runs every lab test (as `make
#      lab-check` does), KUP_LAB=0 none (the total then says so).
# Ends with one line "N passed, N failed[, N skipped]"; exits non-zero if
# anything failed.
set -u
cd "$(dirname "$0")/.."

total() { grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1; }
field() { sed -n "s/.*\b\([0-9]\+\) $2.*/\1/p" <<<"$1"; }

host=$(mktemp /tmp/kup-check.XXXXXX)
lab=$(mktemp /tmp/kup-check-lab.XXXXXX)
trap 'rm -f "$host" "$lab"' EXIT

tests/run.sh "$@" 2>&1 | tee "$host"
rc=${PIPESTATUS[0]}
h=$(total "$host")
p=$(field "$h" passed) f=$(field "$h" failed) s=$(field "$h" skipped)
p=${p:-0} f=${f:-1} s=${s:-0}

if [ "${KUP_LAB:-1}" = 0 ] || [ $# -gt 0 ]; then
	echo "# lab tests not run (KUP_LAB=0 or a test pattern was given)"
	s=$((s + 1))
else
	labtests=()
	if [ "${KUP_LAB:-core}" != all ]; then
		mapfile -t labtests < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' tests/vm/core-tests)
		echo "# ---- QEMU lab tests, the core set (tests/vm/core-tests: ${labtests[*]});" \
			"KUP_LAB=all or make lab-check for all, KUP_LAB=0 for none"
	else
		echo "# ---- QEMU lab tests, all of them (tests/vm; KUP_LAB=0 to leave them out)"
	fi
	tests/vm/run-lab-tests.sh "${labtests[@]}" 2>&1 | tee "$lab"
	lrc=${PIPESTATUS[0]}
	l=$(total "$lab")
	lp=$(field "$l" passed) lf=$(field "$l" failed)
	p=$((p + ${lp:-0})) f=$((f + ${lf:-1}))
	[ "$lrc" -ne 0 ] && [ "${lf:-1}" = 0 ] && f=$((f + 1))
	[ "$lrc" -ne 0 ] && rc=1
fi

if [ "$s" -gt 0 ]; then
	echo "$p passed, $f failed, $s skipped"
else
	echo "$p passed, $f failed"
fi
[ "$rc" -eq 0 ] && [ "$f" -eq 0 ]
