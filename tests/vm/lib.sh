# Shared by the lab test scripts (tests/vm/t-*.sh): TAP-like output, guest
# commands, and the end of a run.  Source it after setting KUP_LAB_NAME (each
# script uses its own lab instance, stopped at the end; KUP_LAB_KEEP=1 leaves
# the guest running for inspection).
#
#   ok TEXT / not_ok TEXT   one result line
#   note TEXT               "# " before every line of TEXT
#   L ARGS...               run `lab ARGS`, its messages shown as notes
#   R CMD                   run CMD in the guest; output in $R_OUT, its status
#   check TEXT CMD          ok if the guest command CMD succeeds (else its output)
#   check_fails TEXT CMD    ok if it fails
#   bail TEXT               a failure that ends the script
# The script ends (at exit) with "N passed, N failed", status 0 only if
# something ran and nothing failed.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
lab=$here/lab

n=0 passed=0 failed=0
t_start=$(date +%s)
ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
note() { echo "$*" | sed 's/^/# /'; }
L() { "$lab" "$@" 2> >(sed 's/^/# /' >&2); }
R() { R_OUT=$("$lab" run "$*" 2>&1); }
check() {
	local what=$1
	shift
	if R "$@"; then ok "$what"; else not_ok "$what"; note "$R_OUT"; fi
}
check_fails() {
	local what=$1
	shift
	if R "$@"; then not_ok "$what (it succeeded)"; note "$R_OUT"; else ok "$what"; fi
}
finish() {
	trap - EXIT
	if [ "${KUP_LAB_KEEP:-0}" = 1 ]; then
		note "guest left running (KUP_LAB_NAME=$KUP_LAB_NAME $lab stop)"
	else
		"$lab" stop >/dev/null 2>&1
	fi
	note "total time $(($(date +%s) - t_start))s"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ] && [ "$n" -gt 0 ]
	exit $?
}
# A script that ends without reaching its finish (a syntax error, set -e, a
# kill) has not run all its checks: that is a failure of its own.
trap '_rc=$?; not_ok "the script ended before its last check (status $_rc)"; finish' EXIT
bail() { not_ok "$*"; note "cannot go on"; finish; }
