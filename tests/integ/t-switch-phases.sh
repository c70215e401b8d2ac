#!/bin/bash
# The phases of a switch's outage that kup writes into the record of the
# switch (kup status), each from the real command that lives it:
#   - `kup switch --pre-dump=2` (the immediate path, the kexec faked to fail
#     as in t-switch-kexec-fails.sh): its dump notes when the pre-dump
#     rounds began and ended, between the switch's start and the end of the
#     dumps, how many ran, the pages they copied and the pages the frozen
#     pass read of those dumped (fewer); the counter is restored on the
#     running kernel and goes on; records of the older form (times only) or
#     whose numbers do not add up print the times only;
#   - `kup hold` notes when it began in a file of /run (KUP_HOLD_START here),
#     and the first restore of a checkpoint of "another boot" (--as-new-boot
#     on this host) copies it into the record: kup status splits the boot
#     into the time to the hold and from the hold to the restore;
#   - a lazy restore (--lazy, the background pass held back with
#     KUP_LAZY_HOLD): the record gets "memory-complete NAME NS" only once
#     kup-lazy has filled the last page, after the tree ran; kup status
#     prints the memory complete N ms after running; so for each part of a
#     store of several trees (kept units), each restored lazily on its own.
. "$(dirname "$0")/../lib.sh"
require_root
export KUP_FAULT_KEXEC=fail KUP_LAST_SWITCH=$T/last-switch KUP_HOLD_START=$T/hold-start
S=$T/store.ppp
K=$T/vmlinuz-test
echo "not a kernel: KUP_FAULT_KEXEC=fail never loads it" > "$K"
rec() { grep -E "^$1 " "$KUP_LAST_SWITCH"; }
# field LINE-WORD N: the Nth field of that record line
field() { rec "$1" | tail -n 1 | awk -v n="$2" '{ print $n }'; }

check "kup ppp format $S --size 128M" kup_run "$T/fmt.log" ppp format "$S" --size 128M

# ---- kup switch --pre-dump: the rounds in the record ----------------------------
a=$(start_bg "$T/a" "$PROGS/counter" -m 8)
wait_for_line "$T/a" '^C 3 ' 30 || bail "counter did not start"
kup_try switch "$K" --no-initrd -t "$a" --ppp "$S" --fast --pre-dump=2 --config /dev/null \
	> "$T/sw.log" 2>&1
rc=$?
note "$(cat "$T/sw.log")"
track "$a"
check "kup switch --pre-dump=2: the kexec fails (exit 1), the tree restored here" \
	eval "[ $rc = 1 ] && grep -q 'restored on the running kernel' '$T/sw.log'"
check "... the counter goes on" \
	eval "wait_for_line '$T/a' '^C $(( $(line_field "$T/a" '^C ' 2) + 3 )) ' 20 && counter_continues '$T/a' $a 0 3"
note "$(cat "$KUP_LAST_SWITCH")"
check "the record has one pre-dump line" [ "$(rec pre-dump | wc -l)" = 1 ]
pb=$(field pre-dump 2) pd=$(field pre-dump 3) sb=$(field begun 2) dd=$(field dump-done 2)
check "... its rounds begin after the switch and end before the dumps did ($sb <= $pb <= $pd <= $dd)" \
	eval '[ -n "$pb" ] && [ -n "$dd" ] && [ "$sb" -le "$pb" ] && [ "$pb" -le "$pd" ] && [ "$pd" -le "$dd" ]'
check "kup status prints them" kup_run "$T/st1" status
nr=$(field pre-dump 4) np=$(field pre-dump 5) nt=$(field pre-dump 6) nf=$(field pre-dump 7)
check "... and what they did: $nr rounds (1 to 2, and 2 after the images written ahead) copied $np pages; the frozen pass read $nf of $nt" \
	eval '[ -n "$nf" ] && [ "$nr" -ge 1 ] && [ "$nr" -le 4 ] && [ "$np" -gt 0 ] && [ "$nt" -gt 0 ] && [ "$nf" -lt "$nt" ]'
check "... pre-dump N rounds, N pages copied, N ms while the services ran" \
	grep -qE "^  pre-dump $nr rounds?, $np pages copied \([0-9.]+ MiB\), [0-9]+ ms while the services ran \(from 20" "$T/st1"
check "... the frozen pass read N of N pages" \
	grep -qE "^  the frozen pass read $nf of $nt pages \($((nt - nf)) from the pre-dump\)" "$T/st1"
check "kup status --json: pre_dump_begun_ns, pre_dump_done_ns, the rounds and pages" eval "\"$KUP\" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
assert s[\"pre_dump_begun_ns\"] == \"$pb\" and s[\"pre_dump_done_ns\"] == \"$pd\", s
assert s[\"pre_dump_rounds\"] == $nr and s[\"pre_dump_pages_copied\"] == \"$np\", s
assert s[\"dump_pages\"] == \"$nt\" and s[\"frozen_pages_read\"] == \"$nf\", s'"
check "a dump with --pre-dump by hand writes nothing into the record" \
	eval "kup_run '$T/hand.log' dump -t $a -D '$T/hand' --leave-running --pre-dump=1 &&
	      [ \"\$(rec pre-dump | wc -l)\" = 1 ]"
kill_tree "$a"
wait_gone "$a"

# ---- kup hold, then a lazy restore "after a switch" -----------------------------
b=$(start_bg "$T/b" "$PROGS/counter" -m 16)
wait_for_line "$T/b" '^C 3 ' 30 || bail "counter did not start"
sumb=$(line_field "$T/b" '^MEM ' 2)
check "kup dump --ppp" kup_run "$T/dump.log" dump -t "$b" --ppp "$S"
check "the dumped counter is gone" wait_gone "$b"
# the switch that dumped it, on "another boot"
cat > "$KUP_LAST_SWITCH" <<R
kup-switch 1
begun $(date +%s%N) 2c8a3c5e-0000-4000-8000-00000000000f $(uname -r) /boot/vmlinuz-$(uname -r)
dumped pid-$b
dump-done $(date +%s%N)
R
held= rt= bt=
if "$KUP" hold --status > /dev/null 2>&1; then
	ok "# SKIP another PID holder runs" && ok "# SKIP" && ok "# SKIP"
else
	h0=$(date +%s%N)
	check "kup hold --ppp: holds the tree's pid" kup_run "$T/hold.log" hold --ppp "$S" --log "$T/holder.log" \
		--timeout 120
	h1=$(date +%s%N)
	hp=$(sed -n 's/.*(holder pid \([0-9]*\)).*/\1/p' "$T/hold.log")
	[ -n "$hp" ] && track "$hp"
	check "... it noted when it began, this boot's ($(cat "$KUP_HOLD_START" 2>/dev/null))" eval '
		read -r magic v bid rt bt < "$KUP_HOLD_START" &&
		[ "$magic $v" = "kup-hold-start 1" ] &&
		[ "$bid" = "$(cat /proc/sys/kernel/random/boot_id)" ] &&
		[ "$h0" -le "$rt" ] && [ "$rt" -le "$h1" ] && [ "$bt" -gt 0 ]'
	check "... nothing in the record yet" eval '! rec hold'
	held=1
fi
check "kup restore --ppp --lazy -d --as-new-boot (background pass held)" \
	eval "KUP_LAZY_HOLD='$T/go' kup_run '$T/restore.log' restore --ppp '$S' --lazy -d --as-new-boot"
track "$b"
lz=$(grep -oE 'pid [0-9]+ \(kup-lazy\)' "$T/restore.log" | awk '{ print $2 }')
[ -n "$lz" ] && track "$lz"
note "$(cat "$KUP_LAST_SWITCH")"
check "the counter runs again, kup-lazy (pid $lz) serves its memory" \
	eval '[ -n "$lz" ] && alive "$lz" && alive "$b"'
check "the record: restored pid-$b, with the restore's start and the kernel's" \
	eval '[ "$(field restored 2)" = "pid-$b" ] && [ -n "$(field restored 6)" ]'
check "... no memory complete while the memory is not" eval '! rec memory-complete'
if [ -n "$held" ]; then
	check "... the hold's start, from $KUP_HOLD_START" \
		eval '[ -n "$rt" ] && [ "$(field hold 2)" = "$rt" ] && [ "$(field hold 3)" = "$bt" ]'
	ks=$(field restored 6) rb=$(field restored 5) hb=$(field hold 3)
	check "... the hold began between the kernel's start and the restore's" \
		eval '[ -n "$hb" ] && [ $((ks + hb)) -le "$rb" ]'
else
	ok "# SKIP no hold" && ok "# SKIP"
fi
touch "$T/go"
check "kup-lazy exits once the rest is in" wait_for "! alive $lz" 120
mc=$(field memory-complete 3) run=$(field restored 4)
check "the record: memory-complete pid-$b, after it ran ($run <= $mc)" \
	eval '[ "$(field memory-complete 2)" = "pid-$b" ] && [ -n "$mc" ] && [ "$run" -le "$mc" ]'
check "... and before the test saw kup-lazy gone" [ "$mc" -le "$(date +%s%N)" ]
check "the counter goes on, its memory intact (sum $sumb)" \
	eval "wait_for_line '$T/b' '^C $(( $(line_field "$T/b" '^C ' 2) + 3 )) ' 20 &&
	      request_check $b '$T/b' | grep -q 'sum=$sumb'"
check "kup status" kup_run "$T/st2" status
note "$(cat "$T/st2")"
check "... memory complete N ms after running" \
	grep -qE "restore [0-9]+ ms, memory complete [0-9]+ ms after running$" "$T/st2"
if [ -n "$held" ]; then
	check "... the boot split at the hold" \
		grep -qE "boot to the hold [0-9]+ ms, hold to its restore [0-9]+ ms, restore" "$T/st2"
else
	ok "# SKIP no hold"
fi
check "kup status --json: memory_complete_ns" eval "\"$KUP\" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
assert s[\"services\"][0][\"memory_complete_ns\"] == \"$mc\", s
assert (\"hold_ns\" in s) == bool(\"$held\"), s'"
kill_tree "$b"

# ---- a store of several trees (kept units), each part lazily --------------------
S2=$T/store2.ppp
check "kup ppp format $S2 --size 128M" kup_run "$T/fmt2.log" ppp format "$S2" --size 128M
pc=$(start_bg "$T/c" "$PROGS/counter" -m 8)
pd=$(start_bg "$T/d" "$PROGS/counter" -m 8)
wait_for_line "$T/c" '^C 3 ' 30 && wait_for_line "$T/d" '^C 3 ' 30 || bail "counters did not start"
check "kup dump -t $pc -t $pd --ppp (one store, two parts)" kup_run "$T/dump2.log" dump -t "$pc" -t "$pd" --ppp "$S2"
check "the dumped counters are gone" eval 'wait_gone $pc && wait_gone $pd'
cat > "$KUP_LAST_SWITCH" <<R
kup-switch 1
begun $(date +%s%N) 2c8a3c5e-0000-4000-8000-00000000000f $(uname -r) /boot/vmlinuz-$(uname -r)
dumped pid-$pc
dumped pid-$pd
R
for p in $pc $pd; do
	check "part of $p: kup restore -t $p --lazy -d --as-new-boot (background pass held)" \
		eval "KUP_LAZY_HOLD='$T/go2' kup_run '$T/restore-$p.log' restore --ppp '$S2' -t $p --lazy -d --as-new-boot"
	track "$p"
done
lzs=$(cat "$T/restore-$pc.log" "$T/restore-$pd.log" | grep -oE 'pid [0-9]+ \(kup-lazy\)' | awk '{ print $2 }' | xargs)
for l in $lzs; do track "$l"; done
check "both run, each served by a kup-lazy ($lzs)" \
	eval '[ $(echo $lzs | wc -w) = 2 ] && alive $pc && alive $pd'
check "... no memory complete in the record yet" eval '! rec memory-complete'
touch "$T/go2"
check "both kup-lazy exit once the memory is in" wait_for "! alive ${lzs% *} && ! alive ${lzs#* }" 120
note "$(cat "$KUP_LAST_SWITCH")"
for p in $pc $pd; do
	run=$(rec restored | awk -v n="pid-$p" '$2 == n { print $4 }')
	mc=$(rec memory-complete | awk -v n="pid-$p" '$2 == n { print $3 }')
	check "pid-$p: memory-complete after it ran ($run <= $mc)" \
		eval '[ -n "$run" ] && [ -n "$mc" ] && [ "$run" -le "$mc" ]'
	o=$T/c
	[ "$p" = "$pd" ] && o=$T/d
	check "... the counter goes on, every value once" \
		eval "wait_for_line '$o' '^C $(( $(line_field "$o" '^C ' 2) + 3 )) ' 20 && counter_continues '$o' $p 0 3"
done
check "kup status: a memory complete under each" \
	eval '[ "$("$KUP" status | grep -c "memory complete [0-9]* ms after running$")" = 2 ]'
kill_tree "$pc"
kill_tree "$pd"

# ---- the hold's note, as the first report of a boot reads it: every byte checked
# (kup restore --if-any of an empty store: what kup-restore.service runs)
bid=$(cat /proc/sys/kernel/random/boot_id)
up=$(awk '{ printf "%d", $1 * 1000000000 }' /proc/uptime)
# noted LINE: the record gets a hold line from a hold-start file of LINE
# (and a newline): 0 yes, 1 no, 2 the report failed
noted() {
	printf 'kup-switch 1\nbegun 1765065000000000000 2c8a3c5e-0000-4000-8000-00000000000f a b\n' \
		> "$KUP_LAST_SWITCH"
	rm -f "$KUP_HOLD_START"
	printf '%s\n' "$1" > "$KUP_HOLD_START"
	"$KUP" restore --ppp "$S" -d --if-any > "$T/note.log" 2>&1 || { cat "$T/note.log"; return 2; }
	sanitizer_report "$T/note.log" && { cat "$T/note.log"; return 2; }
	grep -q '^booted ' "$KUP_LAST_SWITCH" || return 2
	grep -q '^hold ' "$KUP_LAST_SWITCH"
}
check "a note of this boot goes into the record" \
	noted "kup-hold-start 1 $bid 1765065030000000000 $((up / 2))"
check "... as the line: hold 1765065030000000000 $((up / 2))" \
	grep -qx "hold 1765065030000000000 $((up / 2))" "$KUP_LAST_SWITCH"
# not_noted LINE: no hold line, the report done
not_noted() { noted "$1"; [ $? = 1 ]; }
check "one of another boot does not" \
	not_noted "kup-hold-start 1 2c8a3c5e-0000-4000-8000-00000000000f 1765065030000000000 5"
check "nor one from after the boot's present" \
	not_noted "kup-hold-start 1 $bid 1765065030000000000 $((up * 2))"
check "nor one with more after it" not_noted "kup-hold-start 1 $bid 1765065030000000000 5 6"
check "nor one whose wall clock is before the kernel's start" not_noted "kup-hold-start 1 $bid 4 5"
bad=0
for i in $(seq 30); do
	junk=$(head -c $((RANDOM % 180)) /dev/urandom | tr -d '\0')
	[ $((i % 2)) = 0 ] && junk="kup-hold-start 1 $bid ${junk:0:40}"
	not_noted "$junk" || { bad=$((bad + 1)); cp "$KUP_HOLD_START" "$T/bad-hold-start"; }
done
check "30 notes of random bytes: no crash, no hold line" [ $bad = 0 ]

# ---- pre-dump lines of older records, or whose numbers do not add up ----------
# status_of LINE: kup status of a record with that pre-dump line
status_of() {
	printf 'kup-switch 1\nbegun 1765065000000000000 2c8a3c5e-0000-4000-8000-00000000000f a b\n%s\n' \
		"$1" > "$KUP_LAST_SWITCH"
	"$KUP" status > "$T/st-odd" 2>&1
	[ $? = 0 ] && ! sanitizer_report "$T/st-odd"
}
check "an older record's pre-dump line (times only): the time, no rounds" eval '
	status_of "pre-dump 1765065001000000000 1765065002500000000" &&
	grep -q "^  pre-dump 1500 ms while the services ran" "$T/st-odd" && ! grep -q "frozen pass" "$T/st-odd"'
check "a pre-dump line whose frozen pass read more than it dumped: the time only" eval '
	status_of "pre-dump 1765065001000000000 1765065002500000000 2 100 50 60" &&
	grep -q "^  pre-dump 1500 ms while the services ran" "$T/st-odd" && ! grep -q "frozen pass" "$T/st-odd"'
check "a full one: 2 rounds, 100 pages copied, 10 of 50 pages read" eval '
	status_of "pre-dump 1765065001000000000 1765065002500000000 2 100 50 10" &&
	grep -q "^  pre-dump 2 rounds, 100 pages copied (0.4 MiB), 1500 ms while the services ran" "$T/st-odd" &&
	grep -q "^  the frozen pass read 10 of 50 pages (40 from the pre-dump)" "$T/st-odd"'
