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
#   mc_client OP N TAG FILL MOD   a memcached client's command for R/check
#   mc_listening            a guest command: waits until 127.0.0.1:11211 listens
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

# mc_client OP N TAG FILL MOD: the guest command of a memcached client
# (python3, 127.0.0.1:11211).  "set" stores keys key0..key(N-1), key i
# holding "TAG-i-" and i % MOD times the byte FILL; "get" checks them all
# and prints "GOT n", the keys found with their values.
mc_client() {
	echo "python3 - $1 $2 $3 $4 $5 <<'PY'
import socket, sys
op, n, tag, fill, mod = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode(), int(sys.argv[5])
s = socket.create_connection(('127.0.0.1', 11211), timeout=10)
f = s.makefile('rwb')
def val(i): return b'%s-%d-' % (tag, i) + fill * (i % mod)
got = 0
for i in range(n):
    if op == 'set':
        v = val(i)
        f.write(b'set key%d 0 0 %d\r\n%s\r\n' % (i, len(v), v)); f.flush()
        assert f.readline() == b'STORED\r\n'
        got += 1
    else:
        f.write(b'get key%d\r\n' % i); f.flush()
        l = f.readline()
        if l.startswith(b'VALUE'):
            v = f.readline()[:-2]; f.readline()
            got += v == val(i)
print('GOT', got)
PY"
}
mc_listening='for i in $(seq 50); do ss -ltn | grep -q :11211 && exit 0; sleep 0.2; done; exit 1'
