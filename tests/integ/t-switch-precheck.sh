#!/bin/bash
# kup switch refuses a tree that holds what its dump would refuse before it
# loads a kernel or stops anything, in the dump's own words, and kup check
# (and kup dump --check) say the same, touching nothing (ckpt_dump_check:
# the dump's own code run on the live tree, docs/design.md "Checking before
# the freeze").  Each tree: a shell (its root) with a counter and
# tests/progs/fdrefused as children, fdrefused holding one thing the dump
# refuses:
#   - a perf event fd and a BPF map fd (no kind of kup's: "unsupported
#     file"), a pidfd of pid 1 (outside the tree: files-pidfd.c), a process
#     in a user namespace of its own (mntns.c), a /proc file of a thread of
#     the tree (files-reg.c);
# a tree writing to a pipe whose reader is outside (files-pipe.c); and two
# trees sharing a pty with the outside: a slave whose master script(1)
# holds, a master whose slave another process holds (files-pty.c, dump.c);
# kup switch exits 1 naming pid, fd and object and "the tree of pid N
# cannot be kept: nothing was changed"; the kernel load was never tried
# (KUP_FAULT_KEXEC=fail besides: this machine is never rebooted); no
# process of the tree was ever traced (a watcher outside the tree reads the
# TracerPid of each of them all along and would say TRACED; it does during
# a real dump, shown first), the counter counts on, every value once; kup
# check's tree
# line FAILs with the reason (--json too); kup dump --check exits 1 saying
# it.  A tree with only what kup keeps passes all three: the switch goes on
# to load the kernel (which fails here: it does not exist).
. "$(dirname "$0")/../lib.sh"
require_root
export KUP_FAULT_KEXEC=fail KUP_LAST_SWITCH=$T/last-switch
K=$T/no-such-vmlinuz
S=$T/store.ppp
check "kup ppp format $S --size 64M" kup_run "$T/fmt.log" ppp format "$S" --size 64M
not_loaded() { ! grep -q "could not be loaded\|loading $K" "$T/err"; }

# tree KIND [ARG [MB]]: a shell with a counter (holding MB of memory) and
# fdrefused KIND [ARG]; sets root, cnt, fr, fd
n=0
tree() {
	n=$((n + 1))
	: > "$T/c$n"
	: > "$T/f$n"
	root=$(start_bg "$T/sh$n" bash -c '"$0" "$1" $2 >> "$3" 2>&1 &
		"$4" -m "$5" >> "$6" 2>&1 & wait' "$PROGS/fdrefused" "$1" "${2:-}" "$T/f$n" \
		"$PROGS/counter" "${3:-1}" "$T/c$n")
	wait_for_line "$T/f$n" '^READY' 30 || bail "fdrefused $1 did not start: $(tail -n 2 "$T/f$n")"
	wait_for_line "$T/c$n" '^C 2 ' 30 || bail "counter did not start"
	fd=$(line_field "$T/f$n" '^FD ' 2)
	fr=$(pgrep -P "$root" -f fdrefused)
	cnt=$(pgrep -P "$root" -f counter)
	watch_tree "$T/w$n" "$root" "$fr" "$cnt"
}

# watch_tree LOG PID...: until LOG.stop exists, read each PID's TracerPid
# over and over (bash builtins only, no fork: a round takes about a
# millisecond) and write "TRACED PID TRACER" to LOG when one is traced, and
# "SAMPLES N" every 100 rounds.
watch_tree() {
	local log=$1
	shift
	: > "$log"
	mkfifo "$log.fifo"
	(
		# a millisecond's pause without a fork: a read of a FIFO that
		# nobody writes, timed out
		exec {nap}<> "$log.fifo"
		r=0
		while [ ! -e "$log.stop" ]; do
			for p in "$@"; do
				while IFS=$':\t ' read -r k v _; do
					[ "$k" = TracerPid ] && [ "$v" != 0 ] && echo "TRACED $p $v" >> "$log"
				done < /proc/$p/status
			done 2>/dev/null
			r=$((r + 1))
			[ $((r % 100)) = 0 ] && echo "SAMPLES $r" >> "$log"
			read -r -t 0.001 -u "$nap" _
		done
	) &
	track $!
}
# stop_watch LOG: one more full sample, then the watcher stops
stop_watch() {
	local s
	s=$(line_field "$1" '^SAMPLES ' 2)
	wait_for_line "$1" "^SAMPLES $((${s:-0} + 100))\$" > /dev/null
	touch "$1.stop"
}

# the watcher sees a real dump (of a tree kup keeps: fdrefused holds an fd
# of kup's own network namespace; frozen while the counter's 64 MiB are
# copied, then let go)
tree nsfd /proc/self/ns/net 64
check "kup dump --leave-running of a tree kup keeps" \
	kup_run "$T/d0.log" dump -t "$root" -D "$T/img0" --leave-running
stop_watch "$T/w$n"
check "... which froze it: the watcher saw each process traced" \
	eval "grep -q '^TRACED $root ' '$T/w$n' && grep -q '^TRACED $fr ' '$T/w$n' && grep -q '^TRACED $cnt ' '$T/w$n'"
kill_tree "$root"

# expect_refused NAME PATTERN COMM PID...: the tree of $root (COMM; its
# counter $cnt writes $T/c$n; watched by watch_tree $T/w$n) is refused by
# kup switch, kup check (--json) and kup dump --check saying PATTERN, and
# runs on untouched: PID... never traced, not stopped now
expect_refused() {
	local kind=$1 pattern=$2 comm=$3 c0 p all=true
	shift 3
	c0=$(lines_count "$T/c$n" '^C ')
	check_fails "$kind: kup switch -t $root exits 1" \
		kup_try switch "$K" -t "$root" --ppp "$S" --config /dev/null
	cp "$T/err" "$T/sw$n"
	check "$kind: ... saying: $pattern" grep -qE "$pattern" "$T/sw$n"
	check "$kind: ... the tree of pid $root cannot be kept: nothing was changed" \
		grep -q "the tree of pid $root cannot be kept: nothing was changed" "$T/sw$n"
	check "$kind: ... the kernel load was never tried" not_loaded
	kup_try check -t "$root" --ppp "$S" --config /dev/null > "$T/check$n" 2>&1
	check "$kind: kup check: FAIL on the tree's line, with the reason" \
		eval "grep -E '^FAIL tree +pid $root \($comm\) cannot be kept: ' '$T/check$n' | grep -qE \"$pattern\""
	kup_try check -t "$root" --ppp "$S" --config /dev/null --json > "$T/check$n.json" 2>/dev/null
	check "$kind: kup check --json: the tree check fails, with the reason" python3 -c '
import json, re, sys
l = [c for c in json.load(open(sys.argv[1])) if c["check"] == "tree"]
assert len(l) == 1 and l[0]["status"] == "fail", l
assert re.search(sys.argv[2], l[0]["message"]), l
' "$T/check$n.json" "$pattern"
	check_fails "$kind: kup dump --check -t $root exits 1" kup_try dump --check -t "$root"
	check "$kind: ... saying why" grep -qE "$pattern" "$T/err"
	stop_watch "$T/w$n"
	check "$kind: no process of the tree was ever traced (the watcher's samples: $(line_field "$T/w$n" '^SAMPLES ' 2))" \
		eval "! grep -q '^TRACED' '$T/w$n'"
	check "$kind: the counter counts on, every value once" \
		eval "wait_for_line '$T/c$n' '^C $((c0 + 3)) ' && counter_continues '$T/c$n' $cnt 0 0"
	for p in "$@"; do
		not_frozen "$p" || all=false
	done
	check "$kind: the whole tree runs, not stopped or traced" $all
}

refused() {
	local kind=$1 pattern=$2
	tree "$kind"
	pattern=${pattern//@FR@/$fr}
	pattern=${pattern//@FD@/$fd}
	pattern=${pattern//@ROOT@/$root}
	expect_refused "$kind" "$pattern" bash "$root" "$fr" "$cnt"
	kill_tree "$root"
}

refused perf-event "pid @FR@ fd @FD@: unsupported file 'anon_inode:\[perf_event\]'"
refused bpf-map "pid @FR@ fd @FD@: unsupported file 'anon_inode:bpf-map'"
refused pidfd-out "pid @FR@ fd @FD@: pidfd of pid 1 \(a process outside the dumped tree\): not supported"
refused userns "pid @FR@ is in another user namespace than the tree's root @ROOT@: not supported"
refused proc-thread "pid @FR@ fd @FD@: /proc/@FR@/task/[0-9]+/status is a /proc file of pid @FR@, a process of the dumped tree, of a thread: not supported"

# a pipe whose reader is outside the tree (a cat): the shell and a sleep,
# its child, write to it (fd 7), the counter to its file
n=$((n + 1))
: > "$T/c$n"
exec 7> >(exec setsid cat > /dev/null)
reader=$!
track "$reader"
root=$(start_bg "$T/sh$n" bash -c '"$0" >> "$1" 2>&1 & sleep 100000 & wait' "$PROGS/counter" "$T/c$n")
exec 7>&-
wait_for_line "$T/c$n" '^C 2 ' 30 || bail "counter did not start"
cnt=$(pgrep -P "$root" -f counter)
slp=$(pgrep -P "$root" -x sleep)
watch_tree "$T/w$n" "$root" "$cnt" "$slp"
expect_refused pipe-reader-out \
	"pid $root fd 7: pipe:\[[0-9]+\]: its read end is outside the dumped tree \(the restored writer would have no reader\): not supported" \
	bash "$root" "$cnt" "$slp"
kill_tree "$root"
kill "$reader"

# a pty slave whose master is outside the tree (script(1) holds it): the
# tree is a counter, its stdin and stderr the pty
n=$((n + 1))
: > "$T/c$n"
sp=$(start_bg "$T/script$n" script -qfc "exec '$PROGS/counter' >> '$T/c$n'" /dev/null)
wait_for_line "$T/c$n" '^C 2 ' 30 || bail "counter did not start under script"
root=$(pgrep -P "$sp")
cnt=$root
pts=$(readlink "/proc/$root/fd/0")
watch_tree "$T/w$n" "$root"
expect_refused pty-master-out \
	"pid $root fd 0: terminal $pts needs --shell-job \(its pty master is held outside the dumped tree\)" \
	counter "$root"
kill_tree "$sp"

# a pty master in the tree (python holds it, with a counter as its child)
# whose slave a process outside holds
n=$((n + 1))
: > "$T/c$n"
root=$(start_bg "$T/py$n" python3 -c 'import os, subprocess, sys, time
m, s = os.openpty()
print(os.ttyname(s), flush=True)
os.close(s)
subprocess.Popen([sys.argv[1]], stdin=subprocess.DEVNULL, stdout=open(sys.argv[2], "a"))
time.sleep(100000)' "$PROGS/counter" "$T/c$n")
wait_for_line "$T/py$n" '^/dev/pts/' 30 || bail "python did not make a pty"
wait_for_line "$T/c$n" '^C 2 ' 30 || bail "counter did not start under python"
pts=$(head -n 1 "$T/py$n")
cnt=$(pgrep -P "$root")
other=$(start_bg "$T/other$n" sh -c 'exec sleep 100000 < "$0"' "$pts")
wait_for "[ \"\$(readlink /proc/$other/fd/0)\" = $pts ]" || bail "sleep did not open $pts"
watch_tree "$T/w$n" "$root" "$cnt"
expect_refused pty-slave-out \
	"pid $other fd 0: holds $pts, whose pty master is in the dumped tree: a pty whose other end is outside the tree is not supported" \
	python3 "$root" "$cnt"
kill "$other"
kill_tree "$root"

# only what kup keeps: the check passes, the switch goes on to the load
root=$(start_bg "$T/good" bash -c '"$0" >> "$1" 2>&1 & wait' "$PROGS/counter" "$T/cg")
wait_for_line "$T/cg" '^C 2 ' 30 || bail "counter did not start"
cnt=$(pgrep -P "$root" -f counter)
check "a tree of what kup keeps: kup dump --check exits 0" kup_run "$T/dc.log" dump --check -t "$root"
kup_try check -t "$root" --ppp "$S" --config /dev/null > "$T/checkg" 2>&1
check "... kup check: ok on its tree line" grep -qE "^ok   tree +pid $root \(bash\): 2 processes" "$T/checkg"
check_fails "... kup switch gets past the check to the load (of a kernel that does not exist)" \
	kup_try switch "$K" -t "$root" --ppp "$S" --config /dev/null
check "... which fails: nothing was changed" grep -q "$K could not be loaded: nothing was changed" "$T/err"
check "... the tree runs on" eval "not_frozen $root && not_frozen $cnt"
kill_tree "$root"
