# Helpers for tests/integ/t-*.sh: TAP-like output ("ok N - text"), a temp
# dir, background programs, waits.  Every test runs under tests/progs/reaper.
set -u
KUP=${KUP:-build/kup}
PROGS=${PROGS:-build/progs}
_n=0
T=$(mktemp -d /tmp/kup-t.XXXXXX)

# stray fds inherited from whoever started us would become part of the tree
for _fd in $(ls /proc/$$/fd); do
	[ "$_fd" -gt 2 ] && eval "exec $_fd>&-" 2>/dev/null
done

cleanup() {
	for p in $(cat "$T"/pids 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() { _n=$((_n + 1)); echo "not ok $_n - $*"; }
# check "description" command...
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
skip_all() { echo "# SKIP $*"; exit 0; }

# start_bg OUTFILE CMD...: a new session running CMD; prints its pid
start_bg() {
	local out=$1; shift
	setsid "$@" > "$out" 2>&1 < /dev/null &
	echo $! >> "$T/pids"
	echo $!
}

# wait_for_line FILE REGEX [TIMEOUT_S]
wait_for_line() {
	local i
	for ((i = 0; i < ${3:-20} * 10; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# timed out waiting for /$2/ in $1"; tail -5 "$1" | sed 's/^/# /'
	return 1
}

# wait_gone PID [TIMEOUT_S]
wait_gone() {
	local i
	for ((i = 0; i < ${2:-10} * 10; i++)); do
		[ -d /proc/$1 ] || return 0
		grep -q '^State:.*Z' /proc/$1/status 2>/dev/null && { sleep 0.1; continue; }
		sleep 0.1
	done
	return 1
}

alive() { [ -d /proc/$1 ] && ! grep -q '^State:.*[ZX]' /proc/$1/status 2>/dev/null; }

# the restored process is not our child: remember it for cleanup
track() { echo "$1" >> "$T/pids"; }

# lines_count FILE REGEX
lines_count() { grep -cE "$2" "$1" 2>/dev/null || true; }
