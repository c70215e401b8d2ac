#!/bin/bash
# Run the QEMU lab tests (tests/vm/t-*.sh), as `make lab-check` does.
#
#   tests/vm/run-lab-tests.sh [t-NAME.sh ...]
#
# 1. builds (or reuses) the cached guest: tests/vm/lab build
# 2. installs kup into it: `make install DESTDIR=TMP` at the top of the repo,
#    then `lab install-kup TMP` (skipped with KUP_LAB_NO_INSTALL=1, or when
#    there is no top-level Makefile); with KUP_LAB_INSTALL=deb the Debian
#    package instead: `make deb`, then `lab install-kup build/deb/kup_*.deb`
#    (dpkg -i in every guest at its boot), and KUP_LAB_DEB names it for the
#    scripts (t-switch-deb.sh)
# 3. runs each test script (all tests/vm/t-*.sh by default) with a time limit
#    (KUP_LAB_TEST_TIMEOUT, default 1800 s), passing its output through
# 4. ends with one line "N passed, N failed" summing the scripts' own
#    "N passed, N failed" lines; a script that dies without one counts as
#    one failure.  Exit status 0 only if nothing failed.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
lab=$here/lab
limit=${KUP_LAB_TEST_TIMEOUT:-1800}
passed=0 failed=0
t0=$(date +%s)

summary() {
	echo "# lab tests took $(($(date +%s) - t0))s"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit $?
}

if ! "$lab" build; then
	echo "not ok - lab build"
	failed=$((failed + 1))
	summary
fi

if [ "${KUP_LAB_NO_INSTALL:-0}" != 1 ] && [ -f "$top/Makefile" ] && [ "${KUP_LAB_INSTALL:-tree}" = deb ]; then
	log=$(mktemp /tmp/kup-lab-deb.XXXXXX)
	if ${MAKE:-make} -s -C "$top" deb >"$log" 2>&1 &&
		deb=$(ls -1 "$top"/build/deb/kup_*_amd64.deb | tail -n1) &&
		"$lab" install-kup "$deb"; then
		export KUP_LAB_DEB=$deb
		echo "# kup installed from $deb (make deb; dpkg -i in the guest)"
	else
		tail -n 20 "$log"
		echo "not ok - make deb && lab install-kup build/deb/kup_*.deb"
		failed=$((failed + 1))
	fi
	rm -f "$log"
elif [ "${KUP_LAB_NO_INSTALL:-0}" != 1 ] && [ -f "$top/Makefile" ]; then
	tree=$(mktemp -d /tmp/kup-lab-destdir.XXXXXX)
	trap 'rm -rf "$tree"' EXIT
	if ${MAKE:-make} -s -C "$top" install DESTDIR="$tree" >"$tree.log" 2>&1 &&
		"$lab" install-kup "$tree"; then
		echo "# kup installed from $top (make install DESTDIR=...)"
	else
		tail -n 20 "$tree.log"
		echo "not ok - make install DESTDIR=... && lab install-kup"
		failed=$((failed + 1))
	fi
	rm -f "$tree.log"
fi

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=("$here"/t-*.sh)
fi
for t in "${tests[@]}"; do
	[ -f "$t" ] || t=$here/$t
	name=$(basename "$t")
	echo "# ---- $name"
	out=$(mktemp)
	timeout -k 30 "$limit" bash "$t" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
	rm -f "$out"
	if [ -n "$line" ]; then
		p=$(echo "$line" | cut -d' ' -f1)
		f=$(echo "$line" | cut -d' ' -f3)
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			echo "not ok - $name exited with status $rc"
			failed=$((failed + 1))
		fi
	else
		[ "$rc" = 124 ] && echo "# $name: TIMEOUT after ${limit}s"
		echo "not ok - $name (status $rc, no summary line)"
		failed=$((failed + 1))
	fi
done
summary
