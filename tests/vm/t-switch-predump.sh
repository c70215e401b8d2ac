#!/bin/bash
# `kup switch --pre-dump` across a real kexec in the QEMU lab, 6.1.0-47 ->
# 6.1.0-56.  kup-dirtier.service runs tests/progs/dirtier: 192 MiB of
# private memory that two threads keep rewriting, each page stamped with a
# generation a table in the process records.  `kup switch --pre-dump=3
# --unit` copies that memory into the store while it runs (Debian's 6.1 has
# no PAGEMAP_SCAN: the writes are tracked by soft-dirty bits), then freezes
# it (in the shutdown of the clean switch) and reads only what was written
# since.  On the new boot:
#   - the shutdown's dump ran rounds that copied pages, and its frozen pass
#     read fewer pages than the tree has (the console); the image was
#     written ahead into /dev/pmem0 and the frozen pass wrote only the pages
#     written since into it;
#   - the unit runs with the main pid it had, never restarted (one READY
#     line), its self-check counter goes on from where it was (CHECK 2
#     after CHECK 1 before the switch), its writes counter too, and every
#     one of its pages holds the generation its table says (a page written
#     after the last round and missed by the frozen pass would not);
#   - kup status and kup status --json show the rounds, the pages they
#     copied, the pages the frozen pass read of the total, and the outage's
#     phases: pre-dump while it ran, freeze+dump, shutdown+kexec, boot to the
#     hold, hold to its restore, restore (and, lazily, memory complete).
# KUP_LAB_RESTORE_MEMORY=lazy: KUP_RESTORE_MEMORY=lazy in the guest's
# /etc/default/kup: the tree runs before its memory is back, kup-lazy fills
# it (the pages the frozen pass read, the hot ones, first).
#
# Uses its own lab instance (KUP_LAB_NAME, default "switch-predump").
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-predump}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
OUT=/root/dirtier.out
U=kup-dirtier.service
MB=${KUP_LAB_PREDUMP_MB:-192}
ROUNDS=3
MEM=${KUP_LAB_RESTORE_MEMORY:-}

# gcheck: SIGUSR1 to the unit's main pid; its next CHECK line, which must
# say OK, is in R_OUT
gcheck() {
	R "p=\$(systemctl show -p MainPID --value $U); k=\$(grep -c '^CHECK ' $OUT)
	   kill -USR1 \$p || exit 1
	   for i in \$(seq 240); do [ \$(grep -c '^CHECK ' $OUT) -gt \$k ] && break; sleep 0.5; done
	   grep '^CHECK ' $OUT | sed -n \"\$((k + 1))p\" | grep ' OK'"
}
writes_of() { sed -n 's/.* writes=\([0-9]*\).*/\1/p' <<<"$1"; }

[ -x "$PROGS/dirtier" ] || bail "$PROGS/dirtier is missing (make progs)"
L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
R "mkdir -p $GP" && L cp-in "$PROGS/dirtier" "$GP/dirtier" || bail "copy dirtier in"
check "$U: dirtier, $MB MiB rewritten by two threads (kup's messages to the journal)" \
	"cat > /etc/systemd/system/$U <<'UNIT'
[Unit]
Description=kup lab: a service whose memory is rewritten while it runs
[Service]
ExecStart=$GP/dirtier $MB 2 2000
StandardOutput=append:$OUT
StandardError=journal
UNIT
systemctl daemon-reload"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
if [ -n "$MEM" ]; then
	check "KUP_RESTORE_MEMORY=$MEM in /etc/default/kup" \
		"sed -i '/^KUP_RESTORE_MEMORY=/d' /etc/default/kup 2>/dev/null; echo KUP_RESTORE_MEMORY=$MEM >>/etc/default/kup"
fi
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B (kup's hook)" "update-initramfs -u -k $B >/dev/null 2>&1"
check "systemctl start $U: READY" \
	"rm -f $OUT; systemctl start $U && for i in \$(seq 600); do grep -q '^READY ' $OUT && exit 0; sleep 0.5; done; exit 1"
pid=$(L run "systemctl show -p MainPID --value $U")
ok "$U runs: main pid $pid"
if gcheck; then ok "before the switch: $R_OUT"; else bail "dirtier's first self-check: $R_OUT"; fi
w1=$(writes_of "$R_OUT")
check "kup check $B --unit $U: every check passes" "kup check $B --unit $U"

note "kup switch $B --unit $U --pre-dump=$ROUNDS"
t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U --pre-dump=$ROUNDS >/root/switch.log 2>&1" >/dev/null 2>&1
L wait-boot "$B" --timeout 900 || bail "the guest did not come back on $B"
ok "the guest came back on $(L run uname -r)"
note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
note "$(L run 'cat /root/switch.log')"
con=$("$lab" console)
dumplog=$(grep -a -E 'kup dump: (pre-dump|pid [0-9]+: [0-9]+ (of|pages written)|dumped|.*frozen)' "$con" | tr -d '\r')
note "the shutdown's dump on the console:"
note "$dumplog"
if grep -q 'tracked by soft-dirty bits' <<<"$dumplog" &&
	grep -Eq 'pre-dump round 1: [1-9][0-9]* dirty pages copied' <<<"$dumplog"; then
	ok "the dump's pre-dump rounds (soft-dirty) copied pages while $U ran"
else
	not_ok "the dump's pre-dump rounds (soft-dirty) copied pages while $U ran"
fi
line=$(grep -E "pid $pid: [0-9]+ of [0-9]+ pages from the pre-dump" <<<"$dumplog" | tail -n 1)
if [[ $line =~ pid\ $pid:\ ([0-9]+)\ of\ ([0-9]+)\ pages\ from\ the\ pre-dump,\ ([0-9]+)\ read\ now ]] &&
	[ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[3]}" -lt "${BASH_REMATCH[2]}" ]; then
	ok "the frozen pass read ${BASH_REMATCH[3]} of ${BASH_REMATCH[2]} pages (${BASH_REMATCH[1]} from the pre-dump)"
else
	not_ok "the frozen pass read fewer pages than pid $pid has (the rest from the pre-dump)"
fi
# /dev/pmem0 is a block device: the images are streamed, written ahead by
# the pre-dump, and the frozen pass writes only the pages written since
total=${BASH_REMATCH[2]:-0}
if grep -q 'pre-dump: page images written ahead' <<<"$dumplog" &&
	[[ $(grep -E "pid $pid: [0-9]+ pages written into its page image at the freeze" <<<"$dumplog") =~ pid\ $pid:\ ([0-9]+)\ pages ]] &&
	[ "${BASH_REMATCH[1]}" -gt 0 ] && [ $((BASH_REMATCH[1] * 4)) -lt "$total" ]; then
	ok "the image was written ahead into /dev/pmem0, the frozen pass wrote ${BASH_REMATCH[1]} of its $total pages"
else
	not_ok "the image was written ahead into /dev/pmem0, the frozen pass wrote only the pages written since"
fi

check "$U is active" "for i in \$(seq 600); do systemctl is-active -q $U && exit 0; sleep 0.5; done; exit 1"
note "$(L run "journalctl -b -u $U --no-pager -o cat | tail -n 12")"
check "its main pid is $pid, as before the switch, in the unit's cgroup" \
	"[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ] && grep -qx dirtier /proc/$pid/comm &&
	 grep -q '/system.slice/$U\$' /proc/$pid/cgroup"
check "its start was the restore (kup restore in the unit's journal)" \
	"journalctl -b -u $U -o cat | grep -q 'kup restore: restored .* (root pid $pid)'"
check "never restarted: one READY line, from pid $pid" \
	"[ \$(grep -c '^READY ' $OUT) = 1 ] && grep -q '^READY $pid ' $OUT"
if gcheck; then ok "after the switch every page holds its generation: $R_OUT"; else not_ok "after the switch every page holds its generation"; note "$R_OUT"; fi
w2=$(writes_of "$R_OUT")
if grep -q '^CHECK 2 OK' <<<"$R_OUT" && [ -n "$w1" ] && [ -n "$w2" ] && [ "$w2" -gt "$w1" ]; then
	ok "its check counter and writes counter continued (CHECK 2, writes $w1 -> $w2)"
else
	not_ok "its check counter and writes counter continued (CHECK 2, writes ${w1:-?} -> ${w2:-?})"
fi
R "sleep 3"
if gcheck && w3=$(writes_of "$R_OUT") && [ -n "$w3" ] && [ "$w3" -gt "$w2" ]; then
	ok "it keeps rewriting its memory, every page right (writes $w2 -> $w3)"
else
	not_ok "it keeps rewriting its memory, every page right"; note "$R_OUT"
fi
if [ "$MEM" = lazy ]; then
	check "the restore was lazy (KUP_RESTORE_MEMORY=lazy)" \
		"journalctl -b -u $U -o cat | grep -q 'KUP_RESTORE_MEMORY=lazy'"
	check "kup-lazy filled the memory and exited, the store scrubbed" \
		"for i in \$(seq 1200); do pgrep -x kup-lazy >/dev/null || break; sleep 0.5; done;
		 ! pgrep -x kup-lazy >/dev/null &&
		 journalctl -b -u $U -o cat | grep -q 'the tree.s memory is complete: the store is scrubbed'"
	note "$(L run "journalctl -b -u $U -o cat | grep -E 'kup-lazy|hot|memory is complete|outage' | tail -n 8")"
	# the pages the frozen pass read (not from the pre-dump's copy) are the
	# image's hot runs: kup-lazy fills them first
	check "kup-lazy filled the hot pages (those the frozen pass read) first" \
		"journalctl -b -u $U -o cat | grep -Eq 'memory is complete: [0-9]+ pages filled \([1-9][0-9]* of them first: those written last before the dump\)'"
	if gcheck; then ok "with all its memory back, every page holds its generation: $R_OUT"; else not_ok "with all its memory back, every page holds its generation"; note "$R_OUT"; fi
fi

R "kup status; kup status --json"
note "$R_OUT"
st=$R_OUT
if grep -Eq "^  pre-dump [1-$((ROUNDS + 2))] rounds?, [1-9][0-9]* pages copied .* while the services ran" <<<"$st" &&
	grep -Eq "^  the frozen pass read [0-9]+ of [1-9][0-9]* pages" <<<"$st"; then
	ok "kup status: the pre-dump rounds, the pages they copied, the pages the frozen pass read"
else
	not_ok "kup status: the pre-dump rounds, the pages they copied, the pages the frozen pass read"
fi
phases="pre-dump [0-9]+ ms while it ran, freeze\+dump [0-9]+ ms, shutdown\+kexec [0-9]+ ms, boot to the hold [0-9]+ ms, hold to its restore [0-9]+ ms, restore [0-9]+ ms"
[ "$MEM" = lazy ] && phases="$phases, memory complete [0-9]+ ms after running"
if grep -A1 "^  $U: outage [0-9]* ms" <<<"$st" | grep -Eq "^    $phases\$"; then
	ok "kup status: $U's outage and its phases"
else
	not_ok "kup status: $U's outage and its phases"
fi
check "kup status --json: the rounds (1 to $ROUNDS, and 2 after images written ahead), pages copied, the frozen pass read fewer pages than the total" \
	"kup status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
total, read = int(s[\"dump_pages\"]), int(s[\"frozen_pages_read\"])
assert 1 <= s[\"pre_dump_rounds\"] <= $ROUNDS + 2, s
assert int(s[\"pre_dump_pages_copied\"]) >= $MB * 256, s
assert total >= $MB * 256 and read < total, s
u = s[\"services\"][0]
assert u[\"name\"] == \"$U\" and u[\"state\"] == \"restored\" and u[\"outage_ms\"] >= 0, u
assert int(s[\"pre_dump_done_ns\"]) <= int(u[\"freeze_ns\"]) <= int(s[\"dump_done_ns\"]) <= int(u[\"kernel_start_ns\"]), s
print(\"rounds\", s[\"pre_dump_rounds\"], \"copied\", s[\"pre_dump_pages_copied\"], \"frozen read\", read, \"of\", total)
'"
note "$R_OUT"
check "systemctl stop $U stops it" "systemctl stop $U && ! kill -0 $pid 2>/dev/null"
finish
