#!/bin/bash
# Interrupted dumps and restores (kup(8), SIGNALS).  A counter holding
# 1 GiB is dumped into a file store that already holds a checkpoint, and the
# kup command is sent SIGINT, SIGTERM, SIGHUP or SIGKILL as soon as the tree
# is frozen and 20, 100 and 300 ms later, in the middle of the memory copy.
# Each time kup exits with 128 + the signal and says so (a SIGKILLed
# command cannot: its worker process says it), and the tree is exactly as it
# was: every thread running and untraced, the count going on without a gap,
# the same memory sum, mappings and signal mask; the store keeps its
# previous checkpoint and verifies.  With -D: no checkpoint is left (every
# image written is removed, an earlier checkpoint there included), and a
# restore says so.  With --tcp-established, the tree's connection keeps
# working and no network lock is left.  A restore interrupted by SIGINT or
# SIGTERM, even once the root is complete and its child's memory is being
# written, leaves no process of the tree and the store as it was: the next
# restore works.
. "$(dirname "$0")/../lib.sh"
require_root

S=$T/store.ppp
MB=${ABORT_MB:-1024}

# kup_bg LOG ARGS...: start kup in the background with SIGINT and SIGHUP at
# their defaults (a script's background job has SIGINT ignored, and kup
# keeps a signal that was ignored when it started ignored); sets KP.
kup_bg() {
	local log=$1
	shift
	env --default-signal=INT,HUP "$KUP" "$@" > "$log" 2>&1 &
	KP=$!
}

# wait_frozen PID: until PID is in a tracing stop (kup froze it), 20 s at
# most; a tight loop, no process per poll.
wait_frozen() {
	local st end=$(( ${EPOCHREALTIME/./} + 20000000 ))
	while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
		st=$(< "/proc/$1/status") || return 1
		[[ $st == *$'State:\tt'* ]] && return 0
	done
	return 1
}

# wait_untraced PID: until PID's main thread has no tracer, 1 s at most (a
# tight loop: it measures how fast an abort lets the tree go).
wait_untraced() {
	local st end=$(( ${EPOCHREALTIME/./} + 1000000 ))
	while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
		st=$(< "/proc/$1/status") || return 1
		[[ $st == *$'TracerPid:\t0\n'* ]] && return 0
	done
	return 1
}

# released PID...: every thread of every PID runs (not stopped, not traced).
released() {
	local p t st
	for p in "$@"; do
		for t in /proc/$p/task/*; do
			st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "$t/status") || return 1
			case $st in T|t|Z|X|'') echo "# $t: state $st"; return 1 ;; esac
			grep -q '^TracerPid:[[:space:]]*0$' "$t/status" ||
				{ echo "# $t: $(grep TracerPid "$t/status")"; return 1; }
		done
	done
}

sigblk() { sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$1/status"; }
gen() { "$KUP" ppp status "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
has_ckpt() { "$KUP" ppp status "$S" --json | grep -q '"checkpoint": true'; }
# no_worker PID: no kup process is left working on PID's tree
no_worker() { ! pgrep -f -- " dump -t $1 " > /dev/null; }
want_status() { case $1 in INT) echo 130 ;; TERM) echo 143 ;; HUP) echo 129 ;; KILL) echo 137 ;; esac; }

check "kup ppp format $S --size 1400M" kup_run "$T/fmt.log" ppp format "$S" --size 1400M

# the store's previous checkpoint: a small counter, left running then killed
small=$(start_bg "$T/small" "$PROGS/counter")
wait_for_line "$T/small" '^C 2 ' || bail "counter did not start"
check "a first checkpoint in the store" kup_run "$T/d0.log" dump -t "$small" --ppp "$S" --leave-running
kill_tree "$small"
gen0=$(gen)

pid=$(start_bg "$T/out" "$PROGS/counter" -m "$MB")
wait_for_line "$T/out" '^C 2 ' 120 || bail "counter -m $MB did not start"
sum=$(line_field "$T/out" '^MEM ' 2)
cp "/proc/$pid/maps" "$T/maps0"
blk0=$(sigblk "$pid")

# abort_dump SIG AT DEST...: dump $pid to DEST (--ppp $S, or -D DIR); send SIG
# to the kup command once the tree is frozen, AT ms later; check the tree,
# the status and the message.
abort_dump() {
	local sig=$1 at=$2 log=$T/dump-$1-$2.log rc c w t0
	shift 2
	w="SIG$sig ${at} ms after the freeze${*:+ ($1)}"
	kup_bg "$log" dump -t "$pid" "$@"
	if ! wait_frozen "$pid"; then
		not_ok "$w: kup froze the tree"
		wait "$KP"
		return 1
	fi
	[ "$at" -gt 0 ] && sleep "$(awk -v m="$at" 'BEGIN { printf "%.3f", m / 1000 }')"
	t0=${EPOCHREALTIME/./}
	kill -"$sig" "$KP"
	check "$w: the tree is let go within a second" wait_untraced "$pid"
	note "$w: let go after $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms"
	wait "$KP"
	rc=$?
	check "$w: kup exits with status $(want_status "$sig")" [ "$rc" = "$(want_status "$sig")" ] ||
		note "$(cat "$log")"
	check "$w: its worker is done" wait_for "no_worker $pid" 20
	check "$w: it says the tree was left running, nothing written" \
		grep -q "interrupted by SIG[A-Z]*.*: pid $pid's tree left running, nothing written" "$log" ||
		note "$(cat "$log")"
	check "$w: every thread runs, untraced" released "$pid"
	c=$(line_field "$T/out" '^C ' 2)
	check "$w: the count goes on from $c, no gap, no repeat" \
		eval 'wait_for_line "$T/out" "^C $((c + 2)) " 10 && counter_continues "$T/out" "$pid" 0 0'
	check "$w: the same mappings" diff "$T/maps0" "/proc/$pid/maps"
	check "$w: the same signal mask ($blk0)" [ "$(sigblk "$pid")" = "$blk0" ]
	check "$w: the same memory sum" eval 'request_check $pid "$T/out" | grep -q "sum=$sum"'
}

for sig in INT TERM HUP KILL; do
	for at in 0 20 100 300; do
		abort_dump "$sig" "$at" --ppp "$S"
		check "SIG$sig at $at ms: the store keeps its checkpoint (generation $gen0)" \
			eval 'has_ckpt && [ "$(gen)" = "$gen0" ]'
		check "SIG$sig at $at ms: kup ppp verify passes" kup_run "$T/v.log" ppp verify "$S"
	done
done

# ---- -D: no image is left; an earlier checkpoint there stays whole -----------
for sig in INT KILL; do
	abort_dump "$sig" 100 -D "$T/img-$sig"
	check "SIG$sig, -D: the new directory is left empty" eval '[ -z "$(ls -A "$T/img-$sig")" ]'
done
check "an earlier checkpoint in $T/img" kup_run "$T/dimg.log" dump -t "$pid" -D "$T/img" --leave-running
before=$(cd "$T/img" && ls -A | sort | xargs; md5sum "$T/img"/*.img | md5sum)
for sig in TERM KILL; do
	abort_dump "$sig" 100 -D "$T/img"
	check "SIG$sig, -D: the earlier checkpoint is still there, every image as it was" \
		eval '[ "$(cd "$T/img" && ls -A | sort | xargs; md5sum "$T/img"/*.img | md5sum)" = "$before" ]'
done
check "kup show reads it" kup_run "$T/show.log" show "$T/img"

# ---- restore: interrupted, nothing left, the store as it was -----------------
# A small counter whose child holds the 1 GiB: the root is taken over first,
# complete, while the child's memory is still being written (held there,
# KUP_TEST_RESTORE_HOLD: written on two CPUs, 1 GiB may be in before 300 ms).
kill_tree "$pid"
wait_gone "$pid"
root=$(start_bg "$T/rsmall" sh -c "'$PROGS/counter' -m $MB >> '$T/rbig' 2>&1 & exec '$PROGS/counter'")
wait_for_line "$T/rbig" '^C 2 ' 120 || bail "the child counter did not start"
kid=$(pgrep -P "$root")
rsum=$(line_field "$T/rbig" '^MEM ' 2)
check "the tree of $root (child $kid, $MB MiB) is dumped into the store" \
	kup_run "$T/dfull.log" dump -t "$root" --ppp "$S"
check "the dumped tree is gone" eval 'wait_gone $root && wait_gone $kid'
gen1=$(gen)
n1=$(wc -l < "$T/rsmall") n2=$(wc -l < "$T/rbig")
for sig in INT TERM; do
	for at in 0 100 300; do
		w="restore, SIG$sig ${at} ms after pid $root appears"
		log=$T/restore-$sig-$at.log
		KUP_TEST_RESTORE_HOLD=$T/never kup_bg "$log" restore --ppp "$S" -d
		wait_for "[ -d /proc/$root ]" 20 > /dev/null
		[ "$at" -gt 0 ] && sleep "$(awk -v m="$at" 'BEGIN { printf "%.3f", m / 1000 }')"
		kill -"$sig" "$KP"
		wait "$KP"
		rc=$?
		check "$w: kup exits with status $(want_status "$sig")" [ "$rc" = "$(want_status "$sig")" ] ||
			note "$(cat "$log")"
		check "$w: it says nothing is left" \
			grep -q "interrupted by SIG$sig: no process of the tree left, the images are intact" "$log" ||
			note "$(cat "$log")"
		check "$w: no process has pid $root or $kid" eval 'wait_gone $root 10 && wait_gone $kid 10'
		check "$w: the counters printed nothing more" \
			eval '[ "$(wc -l < "$T/rsmall")" = "$n1" ] && [ "$(wc -l < "$T/rbig")" = "$n2" ]'
		check "$w: the store keeps its checkpoint (generation $gen1)" \
			eval 'has_ckpt && [ "$(gen)" = "$gen1" ]'
		check "$w: kup ppp verify passes" kup_run "$T/v.log" ppp verify "$S"
	done
done
# the restore after them works; a SIGINT during its scrub (the tree runs:
# held there, KUP_TEST_SCRUB_HOLD) waits for the scrub to end
KUP_TEST_SCRUB_HOLD=$T/scrub-go kup_bg "$T/rfull.log" restore --ppp "$S" -d
check "a restore after the interrupted ones works: the root counts again" \
	wait_for '[ "$(wc -l < "$T/rsmall")" -gt "$n1" ]' 60
track "$root"
kill -INT "$KP"
sleep 0.3
check "a SIGINT during the scrub that follows: kup goes on scrubbing" alive "$KP"
touch "$T/scrub-go"
wait "$KP"
rc=$?
check "... then exits with status 130" [ "$rc" = 130 ] || note "$(cat "$T/rfull.log")"
check "... having said the scrub was completed first" \
	grep -q "SIGINT came during the scrub: the tree runs, the scrub was completed first" "$T/rfull.log"
check "... the store scrubbed: no checkpoint, verify passes" \
	eval '! has_ckpt && kup_run "$T/v.log" ppp verify "$S"'
last=$(head -n "$n1" "$T/rsmall" | awk '$1 == "C" { v = $2 } END { print v }')
check "the root counts on from $last, no gap, no repeat" \
	eval 'wait_for_line "$T/rsmall" "^C $((last + 3)) " 10 && counter_continues "$T/rsmall" "$root" "$n1" 3'
last=$(head -n "$n2" "$T/rbig" | awk '$1 == "C" { v = $2 } END { print v }')
check "the child counts on from $last, no gap, no repeat" \
	eval 'wait_for_line "$T/rbig" "^C $((last + 3)) " 10 && counter_continues "$T/rbig" "$kid" "$n2" 3'
check "with the same memory sum" eval 'request_check $kid "$T/rbig" | grep -q "sum=$rsum"'
kill_tree "$root"
wait_gone "$root"
gen2=$(gen)	# that restore scrubbed the store: no checkpoint now

# ---- --tcp-established: the connection keeps working, no lock is left ---------
. "$(dirname "$0")/../lib-net.sh"
net_setup
# the tree: an echo server (root, holding the connection, dumped first) and
# a counter child with 512 MiB, so that the dump is still copying memory,
# the connection locked and in repair mode, when kup is interrupted
srv=$(start_bg "$T/srv" nsenter --net=/run/netns/"$NSA" sh -c \
	"'$PROGS/counter' -m 512 >> '$T/cnt' 2>&1 & exec '$PROGS/tcppeer' echo-server 10.77.0.1 7001")
wait_for_line "$T/srv" '^LISTEN' || bail "server did not start"
wait_for_line "$T/cnt" '^C 2 ' 60 || bail "the server's counter did not start"
cli=$(start_bg "$T/cli" nsenter --net=/run/netns/"$NSB" "$PROGS/tcppeer" echo-client 10.77.0.1 7001)
wait_for_line "$T/cli" '^N 50$' || bail "client did not start"
progress() { wait_for "[ \"\$(line_field '$T/cli' '^N ' 2)\" -gt $1 ]" 10; }
for sig in INT KILL; do
	for at in 0 100; do
		w="--tcp-established, SIG$sig ${at} ms after the freeze"
		log=$T/tcp-$sig-$at.log
		env --default-signal=INT,HUP nsenter --net=/run/netns/"$NSA" "$KUP" dump -t "$srv" \
			--ppp "$S" --tcp-established > "$log" 2>&1 &
		KP=$!
		wait_frozen "$srv"
		[ "$at" -gt 0 ] && sleep "$(awk -v m="$at" 'BEGIN { printf "%.3f", m / 1000 }')"
		kill -"$sig" "$KP"
		wait "$KP"
		check "$w: kup says the tree was left running" \
			eval 'wait_for "no_worker $srv" 20 && grep -q "tree left running" "$log"' ||
			note "$(cat "$log")"
		check "$w: no network lock is left" [ "$(kup_tables "$NSA")" = 0 ]
		check "$w: the server and its child run, untraced" \
			released "$srv" "$(pgrep -P "$srv")"
		n=$(line_field "$T/cli" '^N ' 2)
		check "$w: the client's count goes on (past $n)" progress $((n + 50))
	done
done
check "the client saw no error" [ "$(lines_count "$T/cli" ERROR)" = 0 ]
check "the server saw no connection closed, one accept" \
	eval '[ "$(lines_count "$T/srv" "CLOSED|ERROR")" = 0 ] && [ "$(lines_count "$T/srv" "^ACCEPT")" = 1 ]'
check "the store is as the last restore left it: no checkpoint, generation $gen2" \
	eval '! has_ckpt && [ "$(gen)" = "$gen2" ]'
check "kup ppp verify passes" kup_run "$T/v.log" ppp verify "$S"
