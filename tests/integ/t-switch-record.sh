#!/bin/bash
# The outage of a kept tree and the record of the last switch (kup status):
# the dump keeps the freeze time in the inventory and prints it, the
# restore prints the outage from it; kup status reads the record of the last
# switch (every line checked: a record of any bytes never crashes it), and
# kup switch-dump (the stop of kup-switch-dump.service) does nothing without
# a plan and dumps nothing when the system is not going down by kexec.
. "$(dirname "$0")/../lib.sh"
require_root
export KUP_LAST_SWITCH=$T/last-switch

# ---- the freeze time and the outage
pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || bail "counter did not start"
before=$(date +%s%N)
dump_and_restore "$pid" "$T/img" || exit 1
after=$(date +%s%N)
check "kup dump printed when it froze the tree" grep -q "kup dump: pid $pid: frozen at 20" "$T/dump.log"
check "the inventory keeps the freeze time, between the test's clock readings" \
	eval "\"$KUP\" show '$T/img/inventory.img' --json | python3 -c '
import json, sys
inv = list(json.load(sys.stdin).values())[0][\"entries\"][0]
t = int(inv[\"freeze_time_ns\"])
assert $before <= t <= $after, (t, $before, $after)'"
check "kup restore printed the tree's outage" \
	grep -qE "kup restore: pid-$pid: outage [0-9]+ ms \(frozen at 20.*, running again at 20" "$T/restore.log"
check "a restore of a checkpoint of this boot records nothing" [ ! -e "$KUP_LAST_SWITCH" ]
kill_tree "$pid"

# ---- kup status
check_fails "kup status without a record: exit 1" "$KUP" status
check "... it says so" grep -q "no switch recorded" "$T/err"
cat > "$KUP_LAST_SWITCH" <<'R'
kup-switch 1
begun 1765065000123000000 2c8a3c5e-0000-4000-8000-000000000001 6.1.0-47-amd64 /boot/vmlinuz-6.1.0-56-amd64
dumped demo-kept.service
restored demo-kept.service 1765065000123000000 1765065042323000000
failed other.service the dump failed in the shutdown
restored liar.service 5 3
nonsense line
R
check "kup status of a record" kup_run "$T/st" status
check "... the outage of the restored unit" \
	grep -q "demo-kept.service: outage 42200 ms (frozen at 2025-12-06 23:50:00.123 UTC" "$T/st"
check "... the unit not kept, and why" grep -q "other.service: not kept: the dump failed in the shutdown" "$T/st"
check "... nothing of a line whose times do not hold" eval "! grep -q liar '$T/st'"
check "kup status --json" eval "\"$KUP\" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
assert s[\"from\"] == \"6.1.0-47-amd64\" and s[\"begun_ns\"] == \"1765065000123000000\", s
a, b = s[\"services\"]
assert a == {\"name\": \"demo-kept.service\", \"state\": \"restored\", \"freeze_ns\": \"1765065000123000000\",
             \"running_ns\": \"1765065042323000000\", \"outage_ms\": 42200}, a
assert b[\"state\"] == \"not-kept\" and \"shutdown\" in b[\"error\"], b'"
# the new kernel did not come up: the next boot (the record notes its
# kernel) is the old one again, booted by the firmware
cat > "$KUP_LAST_SWITCH" <<'R'
kup-switch 1
begun 1765065000123000000 2c8a3c5e-0000-4000-8000-000000000001 6.1.0-47-amd64 6.1.0-56-amd64
dumped demo-kept.service
booted 2c8a3c5e-0000-4000-8000-000000000002 6.1.0-47-amd64
restored demo-kept.service 1765065000123000000 1765065042323000000
R
check "kup status of a switch whose kernel did not come up" kup_run "$T/st3" status
check "... it came back on the old kernel" \
	grep -q "came back on 6.1.0-47-amd64: 6.1.0-56-amd64 did not come up" "$T/st3"
check "... --json: rolled_back" eval "\"\$KUP\" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
assert s[\"rolled_back\"] is True and s[\"booted_release\"] == \"6.1.0-47-amd64\", s'"
sed -i 's/^booted .*/booted 2c8a3c5e-0000-4000-8000-000000000002 6.1.0-56-amd64/' "$KUP_LAST_SWITCH"
check "a switch that came up: kup status says on what" kup_run "$T/st4" status
check "... came up on 6.1.0-56-amd64, no rollback" \
	eval "grep -q 'came up on 6.1.0-56-amd64' '$T/st4' && ! grep -q 'came back' '$T/st4'"
# the phases: the end of the dumps, the new kernel's start and the restore's
# (kup switch and kup restore of this kup write them); a restore's times out
# of order are left out, its outage kept
cat > "$KUP_LAST_SWITCH" <<'R'
kup-switch 1
begun 1765065000000000000 2c8a3c5e-0000-4000-8000-000000000001 6.1.0-56-amd64 6.12.95+deb12-amd64
dumped vpn.service
dumped odd.service
dump-done 1765065001500000000
restored vpn.service 1765065000100000000 1765065090000000000 1765065080000000000 1765065020000000000
restored odd.service 1765065000100000000 1765065090000000000 1765065095000000000 1765065020000000000
R
check "kup status of a record with the phases" kup_run "$T/st2" status
check "... freeze+dump, shutdown+kexec, the boot to the restore, the restore" \
	grep -q "freeze+dump 1400 ms, shutdown+kexec 18500 ms, boot to its restore 60000 ms, restore 10000 ms" "$T/st2"
check "... no phases from times out of order, the outage kept" \
	eval "[ \$(grep -c 'boot to its restore' '$T/st2') = 1 ] && grep -q 'odd.service: outage 89900 ms' '$T/st2'"
check "kup status --json: the phases' times" eval "\"$KUP\" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
assert s[\"dump_done_ns\"] == \"1765065001500000000\", s
a, b = s[\"services\"]
assert a[\"kernel_start_ns\"] == \"1765065020000000000\" and a[\"restore_begun_ns\"] == \"1765065080000000000\", a
assert \"restore_begun_ns\" not in b, b'"
# the pre-dump rounds (kup switch --pre-dump), the start of the new boot's
# kup hold (initramfs, through /run), the memory of a lazy restore complete:
# each line optional, each checked; times out of order left out
cat > "$KUP_LAST_SWITCH" <<'R'
kup-switch 1
begun 1765064997000000000 2c8a3c5e-0000-4000-8000-000000000001 6.1.0-56-amd64 6.12.95+deb12-amd64
pre-dump 1765064998000000000 1765065000100000000
pre-dump 1765065000000000000 1765064999000000000
dumped vpn.service
dumped odd.service
dump-done 1765065001500000000
booted 2c8a3c5e-0000-4000-8000-000000000002 6.12.95+deb12-amd64
hold 1765065025000000000 5000000000
hold 3 5
memory-complete vpn.service 1765065090250000000
restored vpn.service 1765065000100000000 1765065090000000000 1765065080000000000 1765065020000000000
restored odd.service 1765065000100000000 1765065090000000000 1765065085000000000 1765065020000000000
memory-complete odd.service 1765065089000000000
memory-complete ghost.service 1765065095000000000
memory-complete  1765065095000000000
R
check "kup status of a record with every phase" kup_run "$T/st5" status
note "$(cat "$T/st5")"
check "... the pre-dump rounds while the services ran" \
	grep -q "pre-dump 2100 ms while the services ran (from 2025-12-06 23:49:58.000 UTC to 2025-12-06 23:50:00.100 UTC)" "$T/st5"
check "... when the PIDs were held on the new boot" \
	grep -q "the PIDs held from 2025-12-06 23:50:25.000 UTC, 5000 ms after the kernel's start" "$T/st5"
check "... every phase of vpn.service, the memory complete last" \
	grep -q "pre-dump 2100 ms while it ran, freeze+dump 1400 ms, shutdown+kexec 18500 ms, boot to the hold 5000 ms, hold to its restore 55000 ms, restore 10000 ms, memory complete 250 ms after running" "$T/st5"
check "... no memory complete before its service ran (odd.service), no service of a lone line" \
	eval "[ \$(grep -c 'memory complete' '$T/st5') = 1 ] && ! grep -q ghost '$T/st5'"
check "kup status --json: pre-dump, hold, memory complete" eval "\"$KUP\" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"last_switch\"]
assert s[\"pre_dump_begun_ns\"] == \"1765064998000000000\" and s[\"pre_dump_done_ns\"] == \"1765065000100000000\", s
assert s[\"hold_ns\"] == \"1765065025000000000\" and s[\"hold_since_boot_ns\"] == \"5000000000\", s
a, b = s[\"services\"]
assert a[\"name\"] == \"vpn.service\" and a[\"memory_complete_ns\"] == \"1765065090250000000\", a
assert b[\"name\"] == \"odd.service\" and \"memory_complete_ns\" not in b, b'"
# a hold after the restore began (its time since the kernel's start too
# long): the boot to the restore in one piece
sed -i 's/^hold 1765065025000000000 5000000000$/hold 1765065025000000000 61000000000/' "$KUP_LAST_SWITCH"
sed -i 's/^memory-complete vpn.service .*/memory-complete vpn.service 1765065089999000000/' "$KUP_LAST_SWITCH"
check "kup status: a hold after the restore's start, a memory complete before the run" \
	kup_run "$T/st6" status
check "... boot to its restore in one piece, no memory complete" \
	eval "grep -q 'shutdown+kexec 18500 ms, boot to its restore 60000 ms, restore 10000 ms\$' '$T/st6' &&
	      ! grep -q 'memory complete' '$T/st6'"
printf 'kup-switch 2\nbegun 1 x y z\n' > "$KUP_LAST_SWITCH"
check_fails "a record of another format is refused" "$KUP" status
check "... saying so" grep -q "not a kup switch record" "$T/err"
bad=0
for i in $(seq 60); do
	{ echo "kup-switch 1"; head -c $((RANDOM % 3000)) /dev/urandom; } > "$KUP_LAST_SWITCH"
	[ $((i % 3)) = 0 ] && printf 'restored %s 1 %s\nbegun %s\n' "$(head -c 300 /dev/urandom | tr -d '\0\n ')" \
		"$RANDOM$RANDOM" "$(head -c 2000 /dev/urandom | tr -d '\0\n')" >> "$KUP_LAST_SWITCH"
	# the newer lines, with numbers of any size (u64 wraps, signs)
	[ $((i % 3)) = 1 ] && printf 'restored s%s 1 %s 2 1\nmemory-complete s%s %s\npre-dump %s %s\nhold %s %s\nmemory-complete %s 5\n' \
		$((i % 4)) "$RANDOM" $((i % 4)) "$RANDOM$RANDOM" "-$RANDOM" "18446744073709551615" \
		"9223372036854775808" "$RANDOM" "$(head -c 200 /dev/urandom | tr -d '\0\n ')" >> "$KUP_LAST_SWITCH"
	"$KUP" status --json > "$T/fz" 2>&1
	rc=$?
	if [ $rc -gt 1 ] || sanitizer_report "$T/fz" || { [ $rc = 0 ] && ! python3 -m json.tool "$T/fz" >/dev/null 2>&1; }; then
		bad=$((bad + 1))
		cp "$KUP_LAST_SWITCH" "$T/bad-record"
	fi
done
check "60 records of random bytes: no crash, valid JSON or a clean refusal" [ $bad = 0 ]
head -c 300000 /dev/zero > "$KUP_LAST_SWITCH"
check_fails "an oversized record is refused" "$KUP" status

# ---- kup switch-dump
plan=/run/kup/switch-plan
if [ -e $plan ]; then
	skip_all "$plan exists: a clean switch is under way here"
fi
at_exit "rm -f $plan"
check "kup switch-dump without a plan does nothing" kup_run "$T/sd" switch-dump
check "... saying so" grep -q "no switch under way" "$T/sd"
mkdir -p /run/kup
printf 'kup-switch-plan 1\nowner 1\nbogus x\n' > $plan
chmod 600 $plan
check_fails "a plan that does not parse is ignored, exit 1" "$KUP" switch-dump
check "... saying so" grep -q "does not parse" "$T/err"
pid=$(start_bg "$T/out2" "$PROGS/counter")
wait_for_line "$T/out2" '^C 2 ' || bail "counter did not start"
printf 'kup-switch-plan 1\nowner 1\nkernel /boot/none\ndump kup\ndump dump\ndump -t\ndump %s\ndump -D\ndump %s\nname pid-%s\n' \
	"$pid" "$T/img2" "$pid" > $plan
chmod 600 $plan
check "kup switch-dump with a plan, the system not going down by kexec" kup_run "$T/sd2" switch-dump
check "... dumps nothing and says so" grep -q "not going down by kexec: pid-$pid not dumped" "$T/sd2"
check "... the tree runs on, not frozen" not_frozen "$pid"
check "... no images" [ ! -e "$T/img2/inventory.img" ]
check "... the plan is gone" [ ! -e $plan ]
kill_tree "$pid"
