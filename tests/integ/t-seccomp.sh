#!/bin/bash
# Seccomp comes back per thread: strict mode, and chains of filters in the
# order they were installed (a thread with F1 then F2 sees F2's errno, one
# with F1 only sees F1's), shared by every thread after a TSYNC or not; a
# SECCOMP_RET_KILL_PROCESS filter still kills; the counter goes on.  A filter
# that sends syscalls to a user-space supervisor is refused at dump, naming
# the pid, and the process is left running.  The last filter of the main
# thread kills the process on prctl(), which dump and restore both run in
# the task: they must hold the filters off while they drive it.
. "$(dirname "$0")/../lib.sh"
require_root

# seccomp state of every thread: "tid mode filters", by tid
sc_state() {
	local t
	for t in $(ls /proc/$1/task | sort -n); do
		echo "$t $(awk '/^Seccomp:/ { m = $2 } /^Seccomp_filters:/ { f = $2 } END { print m, f }' \
			/proc/$1/task/$t/status)"
	done
}

for mode in differ shared; do
	opt=; [ $mode = shared ] && opt=-s
	: > "$T/out.$mode"
	pid=$(start_bg "$T/out.$mode" "$PROGS/seccomp" $opt)
	wait_for_line "$T/out.$mode" '^READY' || bail "seccomp $opt did not start"
	before=$(sc_state "$pid")
	note "$mode: $before"
	pre=$(request_check "$pid" "$T/out.$mode")
	check "$mode: its self-check passes before the dump ($pre)" [ -n "$pre" ]
	DR_LOG=$T/out.$mode dump_and_restore "$pid" "$T/img.$mode" || exit 1
	check "$mode: every thread has its seccomp mode and number of filters" \
		diff <(echo "$before") <(sc_state "$pid")
	post=$(request_check "$pid" "$T/out.$mode")
	check "$mode: getppid still fails with each thread's errno, the strict thread answers" \
		[ "${pre#CHECK 1 OK }" = "${post#CHECK 2 OK }" ]
	note "$post"
	sleep 0.3
	check "$mode: the counter continues" counter_continues "$T/out.$mode" "$pid" "$DR_LINES" 2
	kill -USR2 "$pid"
	check "$mode: uname() still kills the process (SECCOMP_RET_KILL_PROCESS)" wait_gone "$pid"
	check "$mode: it died in uname()" eval 'tail -n 1 "$T/out.$mode" | grep -q "^UNAME"'
	check "$mode: no ERROR line" [ "$(lines_count "$T/out.$mode" ERROR)" = 0 ]
done

# refused: a user-notif filter
pid=$(start_bg "$T/out.n" "$PROGS/seccomp" -n)
wait_for_line "$T/out.n" '^READY' || bail "seccomp -n did not start"
check_fails "dump of a process with a user-notif seccomp filter fails" \
	kup_try dump -t "$pid" -D "$T/img.n"
check "... naming the pid and the reason" \
	grep -q "pid $pid tid $pid: seccomp filter 0 sends syscalls to a user-space supervisor" "$T/err"
n=$(lines_count "$T/out.n" '^C ')
sleep 0.3
check "... and the process is still running, not traced" \
	eval '[ "$(lines_count "$T/out.n" "^C ")" -gt "$n" ] && not_frozen $pid'
check "... and no checkpoint is left" [ ! -e "$T/img.n/inventory.img" ]
