#!/bin/bash
# kup dump --pre-dump on the lab's Debian 6.1 kernel, which has no
# PAGEMAP_SCAN (6.7) but keeps soft-dirty bits: the writes of the tree during
# the rounds are tracked by soft-dirty (clear_refs 4, pagemap bit 55).
# tests/progs/dirtier, copied into the guest, keeps rewriting 128 MiB in two
# threads, each page stamped with a generation a table records; after the
# restore on the same kernel every page must hold the generation its table
# says (a page written after a round and missed by the frozen pass would
# hold an older one).  Into a directory, then into the store on /dev/pmem0.
#
# Uses its own lab instance (KUP_LAB_NAME, default "predump-guest").
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-predump-guest}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OLD=${KUP_LAB_PREDUMP_KERNEL:-6.1.0-47-amd64}
PROGS=${PROGS:-$top/build/progs}

[ -x "$PROGS/dirtier" ] || bail "no $PROGS/dirtier (make progs)"
L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$OLD" || bail "boot $OLD"
ok "boot $OLD"
"$lab" run --stdin 'cat > /usr/local/bin/dirtier && chmod +x /usr/local/bin/dirtier' \
	< "$PROGS/dirtier" || bail "copy dirtier into the guest"

# gcheck OUT PID: SIGUSR1 to dirtier PID, its next CHECK line must say OK
gcheck() {
	R "k=\$(grep -c '^CHECK ' $1); kill -USR1 $2 || exit 1
	   for i in \$(seq 120); do [ \$(grep -c '^CHECK ' $1) -gt \$k ] && break; sleep 0.5; done
	   grep '^CHECK ' $1 | sed -n \"\$((k + 1))p\" | tee /dev/stderr | grep -q ' OK'"
}

# run_one LABEL DUMP-ARGS RESTORE-ARGS
run_one() {
	local what=$1 dargs=$2 rargs=$3 pid out=/root/out-$1
	R "rm -rf /root/img-$what; setsid dirtier 128 2 4000 > $out 2>&1 < /dev/null & echo \$!"
	pid=$R_OUT
	R "for i in \$(seq 240); do grep -q ^READY $out && exit 0; sleep 0.5; done; exit 1" ||
		{ not_ok "$what: dirtier is READY"; return; }
	if R "kup dump -t $pid $dargs --pre-dump=4 2>&1"; then
		ok "$what: kup dump --pre-dump"
	else
		not_ok "$what: kup dump --pre-dump"; note "$R_OUT"; return
	fi
	note "$(echo "$R_OUT" | grep -E 'pre-dump|read now|frozen')"
	if echo "$R_OUT" | grep -q 'tracked by soft-dirty bits' &&
		echo "$R_OUT" | grep -Eq "pid $pid: [1-9][0-9]* of [0-9]+ pages from the pre-dump, [1-9][0-9]* read now"; then
		ok "$what: soft-dirty rounds ran, the frozen pass read the pages written since"
	else
		not_ok "$what: soft-dirty rounds ran, the frozen pass read the pages written since"
	fi
	if R "kup restore $rargs -d 2>&1"; then
		ok "$what: kup restore"
	else
		not_ok "$what: kup restore"; note "$R_OUT"; return
	fi
	if gcheck "$out" "$pid"; then
		ok "$what: every page holds the generation its table says"
	else
		not_ok "$what: every page holds the generation its table says"; note "$R_OUT"
	fi
	R "kill -9 $pid"
}

run_one dir "-D /root/img-dir" "-D /root/img-dir"
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
run_one store "--ppp /dev/pmem0" "--ppp /dev/pmem0"
finish
