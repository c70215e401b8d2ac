#!/bin/bash
# Three processes A -> B -> C joined by two pipes, both pipes full at dump
# time: after the restore every sequence number arrives exactly once and in
# order (C checks each one), and the run ends with exactly the count A wrote.
. "$(dirname "$0")/../lib.sh"

count=200000	# about 3.5 s of traffic: C reads 512 bytes a millisecond
pid=$(start_bg "$T/out" "$PROGS/pipechain" -c $count)
wait_for_line "$T/out" '^P ' || bail "pipechain did not start"
a=$pid
b=$(line_field "$T/out" '^PID B ' 3)
c=$(line_field "$T/out" '^PID C ' 3)
note "A $a, B $b, C $c"

# Bytes queued in the pipe behind fd $2 of process $1 (FIONREAD through a
# second descriptor of the same pipe, opened via /proc).
queued() {
	python3 - "$1" "$2" <<'PY'
import fcntl, os, struct, sys, termios
fd = os.open("/proc/%s/fd/%s" % (sys.argv[1], sys.argv[2]), os.O_RDONLY | os.O_NONBLOCK)
print(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])
PY
}
# The fd of process $1 that reads a pipe (access mode O_RDONLY).
pipe_rfd() {
	local f fl
	for f in /proc/$1/fd/*; do
		[[ $(readlink "$f") == pipe:* ]] || continue
		fl=$(awk '/^flags:/ { print $2 }' "/proc/$1/fdinfo/${f##*/}")
		[ $((8#$fl & 3)) = 0 ] && { echo "${f##*/}"; return; }
	done
}
q1=$(queued "$b" "$(pipe_rfd "$b")")
q2=$(queued "$c" "$(pipe_rfd "$c")")
check "both pipes hold data at dump time (A->B $q1 bytes, B->C $q2 bytes)" \
	eval '[ "${q1:-0}" -gt 32768 ] && [ "${q2:-0}" -gt 32768 ]'
p_before=$(line_field "$T/out" '^P ' 2)

dump_and_restore "$pid" "$T/img" || exit 1
check "B and C are back with their pids" eval 'alive $b && alive $c'
check "C goes on past $p_before" wait_for "[ \$(line_field '$T/out' '^P ' 2) -gt $p_before ]" 10
check "the chain runs to its end: C got exactly $count numbers, B and C exited 0" \
	wait_for_line "$T/out" '^END OK' 60
check "C's count: DONE $count" grep -q "^DONE $count\$" "$T/out"
check "no number lost, repeated or out of order (no ERROR line)" [ "$(lines_count "$T/out" ERROR)" = 0 ]
check "progress only ever grew" awk '$1 == "P" { if ($2 < p) exit 1; p = $2 }' "$T/out"
