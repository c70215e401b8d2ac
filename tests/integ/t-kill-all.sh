#!/bin/bash
# Every kup process killed with SIGKILL at a random point (the OOM killer, a
# cgroup kill, kill -9 of the command and its worker): kup's undo journal
# (docs/design.md, "When kup dies") lets `kup recover`, or the next kup
# command by itself, put everything back.
#
#  - kup dump --leave-running of a counter holding 96 MiB, killed 0-300 ms
#    after it starts: afterwards the counter is not traced or stopped, has
#    its signal mask back (SIGTERM works, SIGUSR1 gets its CHECK reply with
#    the same memory sum), counts on, has no rwx mapping of kup's left, and
#    the image directory holds either a complete checkpoint or no image;
#  - kup dump (killing the tree): the counter runs on as above with no
#    image left, or the dump was complete and the images restore;
#  - kup restore -d: either the restored counter runs, whole, or nothing of
#    it is left (its PID is free: the next restore works);
#  - kup dump --leave-running --tcp-established of an echo server over a
#    veth pair: afterwards no nftables table is left in its namespace and
#    the client's one connection goes on without an error;
#  - kup restore --tcp-established of a dumped echo server: the server is
#    back whole, or nothing is left and the images restore on a retry; the
#    client's connection goes on and no nftables table is left;
#  - kup killed exactly during an injected syscall (KUP_FAULT_DIE_IN_SYSCALL):
#    the thread parks in kup's code instead of dying, and the recovery
#    (killed there once too) puts it back.
# Kills come 0-300 ms after the start (0-250 for restores, 0-100 for the
# small TCP server, 0-50 for its restore), a range over which the command
# runs.
# Odd rounds run `kup recover`, even rounds `kup show --help` (any command
# recovers first).  KILLALL_ROUNDS sets the rounds per kind (default 10).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
net_setup

ROUNDS=${KILLALL_ROUNDS:-10}
MB=96

# run_killed MAX_MS LOG ARGS...: start kup ARGS in a session of its own,
# SIGKILL every process of that session 0-MAX_MS ms later (until none is
# left).  With IN_NS set, kup runs in that network namespace.
run_killed() {
	local max=$1 log=$2 sid ms
	shift 2
	setsid ${IN_NS:+nsenter --net=/run/netns/$IN_NS} "$KUP" "$@" > "$log" 2>&1 < /dev/null &
	sid=$!
	ms=$((RANDOM % max))
	sleep "$(printf '0.%03d' "$ms")"
	while pgrep -s "$sid" > /dev/null; do
		pkill -9 -s "$sid"
		sleep 0.01
	done
	wait "$sid" 2> /dev/null
	echo "killed after $ms ms: $(tail -n 1 "$log")" >> "$T/rounds"
}

# recover ROUND: kup recover, or let another command do it
recover() {
	if [ $(($1 % 2)) = 1 ]; then
		"$KUP" recover > "$T/recover.log" 2>&1
	else
		"$KUP" show --help > /dev/null 2> "$T/recover.log"
	fi
}

sigblk() { sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$1/status"; }
# rwx anonymous mappings (kup's trampoline is one)
rwx_maps() { grep -cE '^[0-9a-f]+-[0-9a-f]+ rwxp 00000000 00:00 0 *$' "/proc/$1/maps" || true; }
counting() { local n; n=$(line_field "$2" '^C ' 2); wait_for "[ \"\$(line_field '$2' '^C ' 2)\" -gt $((n + 2)) ]" 10; }
# images and staging directories (.kup-new-*: a dump's images before its commit)
images() { ls -d "$1"/*.img "$1"/.kup-new-* 2> /dev/null | wc -l; }
# parked PID: its main thread sleeps in pause() (34), kup's parking loop
parked() { local nr; read -r nr _ < "/proc/$1/syscall"; [ "$nr" = 34 ]; }

# intact PID LOG MEM: the counter runs as it was
intact() {
	local why=
	not_frozen "$1" || why="frozen, traced or gone ($(grep -E '^(State|TracerPid)' "/proc/$1/status" 2> /dev/null | tr -s '\t\n' '  ')$(tail -n 1 "$2"))"
	[ -z "$why" ] && [ "$(sigblk "$1")" != 0000000000000000 ] && why="signal mask $(sigblk "$1")"
	[ -z "$why" ] && [ "$(rwx_maps "$1")" != 0 ] && why="an rwx mapping is left"
	[ -z "$why" ] && ! counting "$1" "$2" > /dev/null && why="does not count"
	[ -z "$why" ] && ! request_check "$1" "$2" > /dev/null && why="no CHECK reply"
	[ -z "$why" ] && [ "$(line_field "$2" '^CHECK ' 6)" != "sum=$3" ] && why="memory: $(line_field "$2" '^CHECK ' 6)"
	[ -z "$why" ] && return 0
	echo "# pid $1: $why"
	return 1
}

start_counter() {
	local c
	c=$(start_bg "$1" "$PROGS/counter" -m "$MB")
	wait_for_line "$1" '^C 2 ' > /dev/null || return 1
	echo "$c"
}

# --- dump --leave-running -----------------------------------------------------
bad=0
for r in $(seq 1 "$ROUNDS"); do
	c=$(start_counter "$T/c$r") || bail "counter did not start"
	mem=$(line_field "$T/c$r" '^MEM ' 2)
	run_killed 300 "$T/d$r.log" dump -t "$c" -D "$T/img$r" --leave-running
	recover "$r"
	if ! intact "$c" "$T/c$r" "$mem"; then
		echo "# round $r: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1))
	elif [ -e "$T/img$r/inventory.img" ]; then
		:	# the dump was complete when it was killed
	elif [ "$(images "$T/img$r")" != 0 ]; then
		echo "# round $r: unfinished images left: $(ls "$T/img$r")"; bad=$((bad + 1))
	fi
	kill -TERM "$c"
	wait_gone "$c" 5 > /dev/null || { echo "# round $r: SIGTERM did not end pid $c"; bad=$((bad + 1)); }
	kill -9 "$c" 2> /dev/null
	wait_gone "$c" > /dev/null
done
check "$ROUNDS killed dumps --leave-running: each tree runs as it was, no image or a complete one" [ "$bad" = 0 ]

# --- dump (the tree is to be killed) ----------------------------------------
bad=0 done_=0
for r in $(seq 1 "$ROUNDS"); do
	c=$(start_counter "$T/k$r") || bail "counter did not start"
	mem=$(line_field "$T/k$r" '^MEM ' 2)
	run_killed 300 "$T/dk$r.log" dump -t "$c" -D "$T/imk$r"
	recover "$r"
	if [ -e "$T/imk$r/inventory.img" ]; then
		# complete: the tree goes, the images bring it back
		wait_gone "$c" > /dev/null || { echo "# round $r: complete dump, tree still there"; bad=$((bad + 1)); }
		if ! "$KUP" restore -D "$T/imk$r" -d > "$T/rk$r.log" 2>&1; then
			echo "# round $r: the complete images do not restore: $(tail -n 1 "$T/rk$r.log")"
			bad=$((bad + 1))
		else
			track "$c"
			intact "$c" "$T/k$r" "$mem" || { echo "# round $r: restored tree broken"; bad=$((bad + 1)); }
		fi
		done_=$((done_ + 1))
	elif ! intact "$c" "$T/k$r" "$mem"; then
		echo "# round $r: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1))
	elif [ "$(images "$T/imk$r")" != 0 ]; then
		echo "# round $r: unfinished images left: $(ls "$T/imk$r")"; bad=$((bad + 1))
	fi
	kill -9 "$c" 2> /dev/null
	wait_gone "$c" > /dev/null
done
note "$done_ of $ROUNDS dumps were complete when killed"
check "$ROUNDS killed dumps: the tree runs as it was without images, or is in complete images" [ "$bad" = 0 ]

# --- killed during an injected syscall ----------------------------------------
# KUP_FAULT_DIE_IN_SYSCALL=NR[:N] (ckpt-core/puppet.c) SIGKILLs kup at the
# entry stop of its N-th injected syscall NR: the thread runs that syscall
# with no tracer, then parks in the code after it.  mmap (9) maps the
# trampoline from the patched entry point, rt_sigaction (13) runs in the
# trampoline, munmap (11) unmaps it from the entry point again; with
# rt_sigaction the first recovery is killed in its own munmap too.  (kup
# commands run at the same time elsewhere may do the recovery: the test
# looks at the tree, not at who recovered it.)
bad=0
for f in 9 13:5 11; do
	c=$(start_counter "$T/f$f") || bail "counter did not start"
	mem=$(line_field "$T/f$f" '^MEM ' 2)
	KUP_FAULT_DIE_IN_SYSCALL=$f "$KUP" dump -t "$c" -D "$T/imf$f" --leave-running > "$T/df$f.log" 2>&1
	if ! alive "$c"; then
		echo "# syscall $f: the counter died: $(tail -n 1 "$T/df$f.log")"
		bad=$((bad + 1))
		continue
	fi
	# parked: asleep in pause() (34), not running on
	wait_for "parked $c" 5 > /dev/null ||
		{ echo "# syscall $f: the thread is not parked: $(cat "/proc/$c/syscall")"; bad=$((bad + 1)); }
	if [ "$f" = 13:5 ]; then
		KUP_FAULT_DIE_IN_SYSCALL=11 "$KUP" recover > "$T/rf0.log" 2>&1
		alive "$c" || { echo "# syscall $f: the counter died with the recovery"; bad=$((bad + 1)); continue; }
	fi
	"$KUP" recover > "$T/rf$f.log" 2>&1 || { echo "# syscall $f: kup recover: $(tail -n 1 "$T/rf$f.log")"; bad=$((bad + 1)); }
	intact "$c" "$T/f$f" "$mem" || { echo "# syscall $f: the counter is not as it was"; bad=$((bad + 1)); }
	[ -e "$T/imf$f/inventory.img" ] || [ "$(images "$T/imf$f")" = 0 ] ||
		{ echo "# syscall $f: unfinished images left"; bad=$((bad + 1)); }
	kill -9 "$c" 2> /dev/null
	wait_gone "$c" > /dev/null
done
check "dumps killed during an injected syscall (mmap, rt_sigaction, munmap; a recovery killed in its munmap): the thread parks, runs as it was once recovered" [ "$bad" = 0 ]

# --- restore -d ---------------------------------------------------------------
c=$(start_counter "$T/rc") || bail "counter did not start"
mem=$(line_field "$T/rc" '^MEM ' 2)
check "a checkpoint to restore" kup_run "$T/rd.log" dump -t "$c" -D "$T/rimg"
wait_gone "$c" > /dev/null
bad=0 ran=0
for r in $(seq 1 "$ROUNDS"); do
	run_killed 250 "$T/rr$r.log" restore -D "$T/rimg" -d
	recover "$r"
	if alive "$c"; then
		track "$c"
		ran=$((ran + 1))
		intact "$c" "$T/rc" "$mem" || { echo "# round $r: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1)); }
		kill -9 "$c"
	fi
	wait_gone "$c" 5 > /dev/null || { echo "# round $r: pid $c left half-restored"; bad=$((bad + 1)); kill -9 "$c"; }
done
note "$ran of $ROUNDS killed restores had finished"
check "$ROUNDS killed restores: the whole tree runs, or nothing of it is left" [ "$bad" = 0 ]
KUP_FAULT_DIE_IN_SYSCALL=9:3 "$KUP" restore -D "$T/rimg" -d > "$T/rf.log" 2>&1
recover 1
check "a restore killed during an injected mmap leaves nothing" wait_gone "$c" 5
check "... and the images still restore" kup_run "$T/rfinal.log" restore -D "$T/rimg" -d
track "$c"
check "... the counter as it was" intact "$c" "$T/rc" "$mem"
kill -9 "$c" 2> /dev/null

# --- dump --tcp-established of a live connection -----------------------------
srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" echo-server 10.77.0.1 7001)
wait_for_line "$T/srv" '^LISTEN' || bail "server did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 7001)
wait_for_line "$T/cli" '^N 50$' || bail "client did not start"
progress() { wait_for "[ \"\$(line_field '$T/cli' '^N ' 2)\" -gt $1 ]" 10; }
bad=0
for r in $(seq 1 "$ROUNDS"); do
	run_killed 100 "$T/dt$r.log" dump -t "$srv" -D "$T/imt$r" --leave-running --tcp-established
	recover "$r"
	n=$(line_field "$T/cli" '^N ' 2)
	if [ "$(kup_tables "$NSA")" != 0 ]; then
		echo "# round $r: a network lock is left: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1))
		in_ns "$NSA" nft list tables | grep kup-lock | while read -r _ _ t; do in_ns "$NSA" nft delete table inet "$t"; done
	fi
	not_frozen "$srv" || { echo "# round $r: server frozen"; bad=$((bad + 1)); }
	progress $((n + 5)) > /dev/null || { echo "# round $r: the connection is stuck: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1)); }
done
check "$ROUNDS killed dumps --tcp-established: no network lock left, the connection goes on" [ "$bad" = 0 ]
check "the client saw no error" [ "$(lines_count "$T/cli" ERROR)" = 0 ]
check "the server answers its checks (signals delivered)" request_check "$srv" "$T/srv"
kill -9 "$srv" "$cli" 2> /dev/null

# --- restore --tcp-established of a dumped connection -------------------------
# Each round dumps a fresh echo server (its client connected) and kills the
# restore at a random point: afterwards the server runs whole, or nothing of
# it is left (the lock kept with the images) and the images restore on a
# retry; either way the client's connection goes on without an error, the
# server answers its check (signals delivered) and no network lock is left
# in the end.
bad=0 ran=0
for r in $(seq 1 "$ROUNDS"); do
	port=$((7100 + r))
	s=$(start_bg "$T/ts$r" nsenter --net=/run/netns/"$NSA" "$PROGS/tcppeer" echo-server 10.77.0.1 $port)
	wait_for_line "$T/ts$r" '^LISTEN' || bail "server did not start"
	k=$(start_bg "$T/tc$r" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 $port)
	wait_for_line "$T/tc$r" '^N 50$' || bail "client did not start"
	if ! kup_run "$T/tdr$r.log" dump -t "$s" -D "$T/imtr$r" --tcp-established; then
		echo "# round $r: the dump failed: $(tail -n 1 "$T/tdr$r.log")"; bad=$((bad + 1)); continue
	fi
	wait_gone "$s" > /dev/null
	IN_NS=$NSA run_killed 50 "$T/trr$r.log" restore -D "$T/imtr$r" -d --tcp-established
	recover "$r"
	note "round $r: $(tail -n 1 "$T/rounds"); recovery: $(grep -i restore "$T/recover.log" | tail -n 1 | cut -c 1-100)"
	if alive "$s"; then
		ran=$((ran + 1))
	elif ! kup_in "$NSA" "$T/trx$r.log" restore -D "$T/imtr$r" -d --tcp-established; then
		echo "# round $r: nothing left, the images do not restore: $(tail -n 1 "$T/trx$r.log")"
		bad=$((bad + 1))
	fi
	track "$s"
	n=$(line_field "$T/tc$r" '^N ' 2)
	if ! alive "$s"; then
		echo "# round $r: pid $s is not back: $(tail -n 1 "$T/ts$r")"; bad=$((bad + 1))
	elif ! wait_for "[ \"\$(line_field '$T/tc$r' '^N ' 2)\" -gt $n ]" 10 > /dev/null; then
		echo "# round $r: the connection is stuck: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1))
	elif ! request_check "$s" "$T/ts$r" > /dev/null; then
		echo "# round $r: the server does not answer its check (signal mask $(sigblk "$s"))"
		bad=$((bad + 1))
	fi
	[ "$(lines_count "$T/tc$r" ERROR)" = 0 ] ||
		{ echo "# round $r: the client saw: $(grep ERROR "$T/tc$r") ($(tail -n 1 "$T/rounds"))"; bad=$((bad + 1)); }
	[ "$(kup_tables "$NSA")" = 0 ] || {
		echo "# round $r: a network lock is left: $(tail -n 1 "$T/rounds")"; bad=$((bad + 1))
		in_ns "$NSA" nft list tables | grep kup-lock | while read -r _ _ t; do in_ns "$NSA" nft delete table inet "$t"; done
	}
	kill -9 "$s" "$k" 2> /dev/null
	wait_gone "$s" > /dev/null
done
note "$ran of $ROUNDS killed restores --tcp-established had finished"
check "$ROUNDS killed restores --tcp-established: the server comes back whole, or the images restore on a retry; the connection goes on, no network lock left" [ "$bad" = 0 ]
