# Helpers for tests/integ/t-*.sh (sourced, bash).
#
# Output is TAP-like: "ok N - text" / "not ok N - text", comments start with
# "# ".  tests/run.sh counts those lines; a script that cannot run here prints
# "# SKIP reason" and exits 0 (skip_all).  A script exits non-zero when any
# check failed (or when the number of checks differs from its plan).
#
# Environment: KUP (the kup binary), PROGS (the built tests/progs).  Scripts
# run under tests/progs/reaper (tests/run.sh sees to it): it reaps the orphans
# and zombies of killed or detached trees, whose PIDs a later restore needs,
# and kills whatever is left when the script ends.
#
# Each script gets $T, a fresh temporary directory, removed at exit together
# with every process started by start_bg or registered with track, and their
# descendants.
#
# Test program protocol (tests/progs/*.c): one write(2) per line on stdout;
# SIGUSR1 asks for "CHECK <k> OK ..." or "CHECK <k> FAIL ..."; "ERROR ..." is
# a broken invariant (and the program exits 1).

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUP=${KUP:-$TOP/build/kup}
PROGS=${PROGS:-$TOP/build/progs}
T=$(mktemp -d /tmp/kup-t.XXXXXX)
# kup hold notes when it began (for the record of a switch) in $T, not in the
# host's /run/kup
export KUP_HOLD_START=$T/hold-start
# The tests' Python programs print a line with one write(2) (print(...,
# flush=True) from a buffered stdout).  PYTHONUNBUFFERED=1 in the caller's
# environment makes print() write each piece alone, and the lines of
# processes sharing a file interleave ("PID o 19179PID w1 ...").
unset PYTHONUNBUFFERED

_n=0		# checks run
_failed=0	# checks failed
_planned=	# from plan

# Stray fds inherited from whoever started us would become part of every tree
# we start (and a dump may rightly refuse, e.g. a pipe whose other end is
# outside the tree).  255 is bash's own script fd, close-on-exec already.
for _fd in $(ls /proc/$$/fd); do
	[ "$_fd" -gt 2 ] && [ "$_fd" -ne 255 ] && eval "exec $_fd>&-" 2>/dev/null
done
unset _fd

# ---- TAP ---------------------------------------------------------------------

# A known failure: run a check with TODO="why" set; a failure is printed as
# "not ok N - text # TODO why" and counted apart (tests/run.sh counts it as
# skipped), so it shows without failing the run.
plan() { _planned=$1; echo "1..$1"; }
ok() { _n=$((_n + 1)); echo "ok $_n - $*${TODO:+ # TODO $TODO}"; }
not_ok() {
	_n=$((_n + 1))
	[ -z "${TODO:-}" ] && _failed=$((_failed + 1))
	echo "not ok $_n - $*${TODO:+ # TODO $TODO}"
}
note() { echo "$*" | sed 's/^/# /'; }

# Sanitizer reports in a log (the test build of kup uses ASan and UBSan).
sanitizer_report() {
	grep -qE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$1" 2>/dev/null
}

# check "description" CMD [ARGS...]: ok if CMD succeeds.  CMD's output goes
# to a file and is shown (as comments) only when the check fails.  A
# sanitizer report in that output fails the check whatever CMD returned.
check() {
	local d=$1 out=$T/.check.$((_n + 1)) rc
	shift
	"$@" > "$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && ! sanitizer_report "$out"; then
		ok "$d"
	else
		not_ok "$d"
		[ $rc -ne 0 ] && echo "# (exit status $rc)"
		tail -n 25 "$out" | sed 's/^/#   /'
	fi
	rm -f "$out"
	return $rc
}

# check_fails "description" CMD [ARGS...]: ok if CMD fails cleanly: an exit
# status from 1 to 125 (126 and 127: it did not even run; above: killed by a
# signal, or timed out) and no sanitizer report.  The output stays in $T/err
# for the checks that follow.
check_fails() {
	local d=$1 rc
	shift
	"$@" > "$T/err" 2>&1
	rc=$?
	if [ $rc -ge 1 ] && [ $rc -le 125 ] && ! sanitizer_report "$T/err"; then
		ok "$d (exit $rc)"
	else
		not_ok "$d (exit status $rc)"
		tail -n 25 "$T/err" | sed 's/^/#   /'
	fi
}

skip_all() { echo "# SKIP $*"; exit 0; }
bail() { not_ok "$*"; exit 1; }

require_root() { [ "$(id -u)" = 0 ] || skip_all "needs root"; }

_on_exit() {
	local rc=$?
	cleanup
	if [ -n "$_planned" ] && [ "$_n" -ne "$_planned" ]; then
		echo "# planned $_planned checks, ran $_n"
		[ $rc -eq 0 ] && rc=1
	fi
	[ $rc -eq 0 ] && [ $_failed -gt 0 ] && rc=1
	exit $rc
}
trap _on_exit EXIT

_at_exit=()
# at_exit CMD...: run CMD (eval) at exit, after the test's processes are gone.
at_exit() { _at_exit+=("$*"); }

cleanup() {
	local p c
	for p in $(cat "$T"/pids 2>/dev/null); do kill_tree "$p"; done
	for c in "${_at_exit[@]}"; do eval "$c"; done
	rm -rf "$T"
}

# ---- processes -----------------------------------------------------------------

# track PID: kill PID and its descendants at exit (restored trees are not our
# children).
track() { echo "$1" >> "$T/pids"; }

# start_bg OUTFILE CMD [ARGS...]: run CMD in a new session (setsid), stdin
# /dev/null, stdout and stderr appended to OUTFILE (O_APPEND: a restored copy
# keeps appending at the end).  Prints the pid, which is CMD's own.
start_bg() {
	local out=$1
	shift
	: >> "$out"
	setsid "$@" >> "$out" 2>&1 < /dev/null &
	echo $! >> "$T/pids"
	echo $!
}

# alive PID: the process exists and is neither a zombie nor dead.
alive() { [ -d /proc/$1 ] && ! grep -q '^State:.*[ZX]' /proc/$1/status 2>/dev/null; }

# proc_state PID: the state letter (R, S, D, T, t, Z...), empty if gone.
proc_state() { sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/$1/status 2>/dev/null; }

# not_frozen PID: running or sleeping, not stopped or traced by anyone.
not_frozen() {
	local st
	st=$(proc_state "$1")
	[ -n "$st" ] && [ "$st" != T ] && [ "$st" != t ] && [ "$st" != Z ] &&
		[ "$(sed -n 's/^TracerPid:[[:space:]]*//p' /proc/$1/status 2>/dev/null)" = 0 ]
}

# descendants PID: every descendant of PID, one per line, children first.
descendants() {
	local c
	for c in $(ps -e -o pid= -o ppid= | awk -v p="$1" '$2 == p { print $1 }'); do
		descendants "$c"
		echo "$c"
	done
}

# kill_tree PID: SIGKILL PID and all its descendants.
kill_tree() {
	local p all
	[ -d /proc/$1 ] || return 0
	all="$(descendants "$1") $1"
	for p in $all; do kill -9 "$p" 2>/dev/null; done
	return 0
}

# own_pgrep NAME: the pids of processes named NAME that this test started:
# those below its reaper (this script's parent), whatever other tests run
# at the same time.
own_pgrep() {
	local p q
	for p in $(pgrep -x "$1"); do
		q=$p
		while [ -n "$q" ] && [ "$q" -gt 1 ]; do
			[ "$q" = "$PPID" ] && { echo "$p"; break; }
			q=$(awk '/^PPid:/ { print $2 }' /proc/$q/status 2>/dev/null)
		done
	done
}

# wait_gone PID [TIMEOUT_S]: until /proc/PID is gone (a zombie still holds
# its pid: the reaper or the parent must reap it first).
wait_gone() { wait_for "[ ! -d /proc/$1 ]" "${2:-10}"; }
wait_pid_gone() { wait_gone "$@"; }

# tree_pids PID: PID and its descendants, sorted, on one line.
tree_pids() { { echo "$1"; descendants "$1"; } | sort -n | tr '\n' ' '; }

# ---- signals -------------------------------------------------------------------

# queue_has_room PID: the signals queued by PID's user (SigQ: all its
# processes together) fill less than half of its RLIMIT_SIGPENDING.
queue_has_room() {
	local k v
	while read -r k v; do
		[ "$k" = SigQ: ] && [ "${v%/*}" -lt $((${v#*/} / 2)) ] && return 0
	done < /proc/$1/status 2>/dev/null
	return 1
}

# rt_storm SIG PID STOPFILE: real-time signal SIG (RTMIN+5...) to PID with
# kill in a loop until STOPFILE exists; prints how many were sent.  Each one
# queues: past RLIMIT_SIGPENDING the kernel would merge them into one
# pending bit and kill would still succeed, so every 256 the storm waits
# while the queue is half full (its target frozen a long time).
rt_storm() {
	local n=0
	while [ ! -e "$3" ]; do
		if [ $((n % 256)) = 0 ] && ! queue_has_room "$2"; then
			sleep 0.01
			continue
		fi
		kill -s "$1" "$2" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}

# ---- waiting -------------------------------------------------------------------

_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# wait_for FILE_OR_CMD [TIMEOUT_S]: an absolute path waits for that file to
# exist; anything else is a shell command, retried until it succeeds.
# TIMEOUT may be fractional (default 10 s).
wait_for() {
	local what=$1 end
	end=$(( $(_now_ms) + $(awk -v t="${2:-10}" 'BEGIN { printf "%d", t * 1000 }') ))
	while :; do
		if [[ $what == /* && $what != *' '* ]]; then
			[ -e "$what" ] && return 0
		else
			eval "$what" > /dev/null 2>&1 && return 0
		fi
		if [ "$(_now_ms)" -ge "$end" ]; then
			echo "# timed out after ${2:-10} s waiting for: $what"
			return 1
		fi
		sleep 0.05
	done
}

# wait_for_line FILE REGEX [TIMEOUT_S]
wait_for_line() {
	wait_for "grep -qE '$2' '$1'" "${3:-20}" && return 0
	tail -n 5 "$1" 2>/dev/null | sed 's/^/#   /'
	return 1
}

# lines_count FILE REGEX
lines_count() { grep -cE "$2" "$1" 2>/dev/null || true; }

# line_field FILE REGEX N: field N of the last line matching REGEX.
line_field() { grep -E "$2" "$1" 2>/dev/null | tail -n 1 | awk -v n="$3" '{ print $n }'; }

# request_check PID LOG [TIMEOUT_S]: send SIGUSR1 and wait for the program's
# next "CHECK <k> ..." line in LOG; prints that line, succeeds if it says OK.
request_check() {
	local k line
	k=$(lines_count "$2" '^CHECK ')
	kill -USR1 "$1" 2>/dev/null || { echo "(no process $1)"; return 1; }
	wait_for "[ \$(grep -c '^CHECK ' '$2') -gt $k ]" "${3:-20}" > /dev/null ||
		{ echo "(no CHECK line within ${3:-20} s)"; return 1; }
	line=$(grep '^CHECK ' "$2" | sed -n "$((k + 1))p")
	echo "$line"
	[[ $line == "CHECK "*" OK"* ]]
}

# ---- kup -----------------------------------------------------------------------

# kup_try ARGS...: run $KUP ARGS with a time limit (exit 124 when over).
kup_try() { timeout -k 5 "${KUP_TIMEOUT:-240}" "$KUP" "$@"; }

# kup_run LOG ARGS...: the same, output to LOG.
kup_run() {
	local log=$1
	shift
	kup_try "$@" > "$log" 2>&1
}

# dump_and_restore PID DIR [DUMP OPTIONS...]: dump the tree rooted at PID
# into DIR, check it is gone (unless --leave-running), restore it with -d and
# check PID is back.  Each step is a check; returns non-zero at the first
# failure.  kup's output is in $T/dump.log and $T/restore.log.  With DR_LOG
# set to a program's output file, DR_LINES has its line count just before
# the restore (what the dumped copy wrote).  $KUP_RESTORE_OPTS is added to
# the restore's options.
DR_LINES=0
dump_and_restore() {
	local pid=$1 dir=$2 leave= tree p
	shift 2
	[[ " $* " == *" --leave-running "* ]] && leave=1
	tree=$(tree_pids "$pid")
	check "kup dump -t $pid${*:+ $*}" kup_run "$T/dump.log" dump -t "$pid" -D "$dir" "$@" ||
		{ note "$(tail -n 20 "$T/dump.log")"; return 1; }
	if [ -z "$leave" ]; then
		check "the dumped tree is gone (pids ${tree% })" \
			eval 'for p in $tree; do wait_gone $p || exit 1; done' || return 1
	fi
	[ -n "${DR_LOG:-}" ] && DR_LINES=$(wc -l < "$DR_LOG")
	# KUP_RESTORE_OPTS: e.g. --lazy (t-lazy-existing.sh runs tests so)
	check "kup restore -d${KUP_RESTORE_OPTS:+ $KUP_RESTORE_OPTS}" kup_run "$T/restore.log" \
		restore -D "$dir" -d ${KUP_RESTORE_OPTS:-} ||
		{ note "$(tail -n 20 "$T/restore.log")"; return 1; }
	track "$pid"
	check "pid $pid is back and running" alive "$pid"
}

# counter_continues LOG PID BEFORE MIN_NEW: the "C <n> <pid> <ms>" lines of
# tests/progs/counter in LOG count 0, 1, 2, ... with no gap and no repeat,
# every one from PID, timestamps never going back, and at least MIN_NEW of
# them come after the first BEFORE lines of LOG (written before a restore).
counter_continues() {
	awk -v pid="$2" -v before="$3" -v min_new="$4" '
		$1 != "C" { next }
		$2 != n { printf "# line %d: count %s, expected %d\n", NR, $2, n; bad = 1; exit }
		$3 != pid { printf "# line %d: pid %s, expected %s\n", NR, $3, pid; bad = 1; exit }
		$4 < t { printf "# line %d: time went back from %s to %s\n", NR, t, $4; bad = 1; exit }
		{ n++; t = $4; if (NR > before) new++ }
		END {
			if (bad) exit 1
			if (new < min_new) { printf "# only %d lines after the restore, want %d\n", new, min_new; exit 1 }
		}' "$1"
}

# image_pids DIR: the pids kup show --json finds in an image directory.
image_pids() {
	"$KUP" show "$1" --json 2>/dev/null | python3 -c '
import json, sys
pids = set()
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "pid" and isinstance(v, int):
                pids.add(v)
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(json.load(sys.stdin))
print(" ".join(str(p) for p in sorted(pids)))'
}

# store_blob_offset STORE NAME: the data offset of blob NAME (or of the one
# whose name ends in /NAME: a part's) in the store (kup ppp ls --json)
store_blob_offset() {
	"$KUP" ppp ls "$1" --json | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    if b["name"] == sys.argv[1] or b["name"].endswith("/" + sys.argv[1]):
        print(b["offset"])
        break' "$2"
}
# store_has_ckpt STORE: the store holds a committed checkpoint
store_has_ckpt() { "$KUP" ppp status "$1" --json | grep -q '"checkpoint": true'; }
# flip_byte FILE OFFSET: damage one byte of FILE (xor 0x5a; twice undoes it)
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $(( (b ^ 0x5a) & 255 )))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
