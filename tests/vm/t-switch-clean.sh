#!/bin/bash
# A clean `kup switch` in the QEMU lab: the rest of the system goes down the
# way `systemctl kexec` takes it, and the kept service is frozen late in that
# shutdown (kup-switch-dump.service), 6.1.0-47 -> 6.1.0-56.
#   - demo-kept.service (the demo counter, a unit with Restart=always and an
#     ExecStop= that leaves a mark) is kept: after the switch it counts on
#     with the same main PID, its ExecStop never ran, it was started once
#     before the switch and once by its restore (never restarted on the way
#     down), and the restore logged its outage (kup status says it too);
#   - demo-mark.service is not kept: its ExecStop writes a mark on the root
#     filesystem, which is on the disk after the new boot (it was stopped in
#     order, before the filesystems went);
#   - the new boot's kernel log shows no ext4 recovery of the root (it was
#     remounted read-only cleanly): demo-mark holds a file it unlinked, which
#     an unclean kexec leaves on the orphan list ("1 orphan inode deleted"
#     at the next mount), and a clean shutdown frees when it stops.
# Then 56 -> 47 with a dump that fails in the shutdown (demo-mark's stop
# puts a stray process into demo-kept's cgroup, which a dump refuses: the
# dump came after that stop): the shutdown goes on cleanly, demo-kept
# starts cold on the new boot, and kup status and kup-restore.service say
# why.
# KUP_LAB_SWITCH_ARGS=--fast runs the first switch the old immediate way
# (dump, then kexec at once) and stops there: the mark, the clean root and
# the freeze in the shutdown must then fail.
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-clean}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
OUT=/root/kept.out
D=/var/lib/kup-test
U=demo-kept.service

[ -x "$PROGS/counter" ] || bail "$PROGS/counter is missing (make progs)"
L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
R "mkdir -p $GP $D" && L cp-in "$PROGS/counter" "$GP/counter" || bail "copy the demo service in"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B and -k $A (kup's hook)" \
	"update-initramfs -u -k $B >/dev/null 2>&1 && update-initramfs -u -k $A >/dev/null 2>&1"

# The units.  demo-mark's stop script puts a stray process into demo-kept's
# cgroup when $D/stray exists (the second switch).
R "cat > $GP/mark-stop <<'EOF'
#!/bin/sh
echo \"stopped-in-order \$(date +%s.%N)\" >> $D/mark
if [ -e $D/stray ]; then
	sleep 600 </dev/null >/dev/null 2>&1 &
	echo \$! > /sys/fs/cgroup/system.slice/$U/cgroup.procs
fi
EOF
chmod +x $GP/mark-stop
cat > /etc/systemd/system/$U <<EOF
[Unit]
Description=kup lab: the demo counter, kept across the switch
[Service]
ExecStartPre=/bin/sh -c 'echo start >> $D/kept-starts'
ExecStart=$GP/counter -m 16 -i 200
ExecStop=/bin/sh -c 'echo stopped >> $D/kept-stopped'
Restart=always
StandardOutput=append:$OUT
StandardError=append:$OUT
[Install]
WantedBy=multi-user.target
EOF
cat > /etc/systemd/system/demo-mark.service <<EOF
[Unit]
Description=kup lab: not kept; its stop leaves a mark on the root filesystem
[Service]
ExecStart=/bin/sh -c 'exec 3>$D/held; echo held >&3; rm $D/held; exec sleep infinity'
ExecStop=$GP/mark-stop
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload && systemctl enable -q $U demo-mark.service &&
systemctl start $U demo-mark.service" || bail "set up the units: $R_OUT"
R "for i in \$(seq 100); do grep -q '^C 5 ' $OUT && exit 0; sleep 0.2; done; exit 1" || bail "$U counts"
pid=$(L run "systemctl show -p MainPID --value $U")
ok "$U runs: main pid $pid; demo-mark.service runs"
check "kup check $B --unit $U: every check passes" "kup check $B --unit $U"

# ---- the clean switch
last=$(L run "awk '\$1 == \"C\" { v = \$2 } END { print v }' $OUT")
args=${KUP_LAB_SWITCH_ARGS:-}
note "kup switch $B --unit $U $args"
t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U $args >/root/switch.log 2>&1" >/dev/null 2>&1
L wait-boot "$B" --timeout 400 || bail "the guest did not come back on $B"
ok "the guest came back on $(L run uname -r)"
note "kup switch to the new kernel answering: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
note "$(L run 'cat /root/switch.log')"
con=$("$lab" console)
note "the shutdown on the console:"
note "$(grep -a -E 'kup switch|demo-|kup-switch-dump|Reached target|kexec' "$con" | tail -n 25)"
check "kup switch said the shutdown was under way" "grep -q 'the shutdown is under way' /root/switch.log"
if grep -a -q "kup dump: $U, pid $pid: frozen at" "$con"; then
	ok "the shutdown's dump printed the freeze time of $U (console)"
else
	not_ok "the shutdown's dump printed the freeze time of $U (console)"
fi
check "$U is active" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
check "its main pid is $pid, as before the switch" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "it counts on from $last with no gap or repeat" \
	"for i in \$(seq 100); do grep -q '^C $((last + 5)) ' $OUT && break; sleep 0.2; done;
	 awk -v pid=$pid '\$1 != \"C\" { next } \$2 != n { print \"line \" NR \": \" \$2 \" want \" n; exit 1 } \$3 != pid { exit 1 } { n++ }' $OUT"
check "systemd did not stop it on the way down (its ExecStop never ran)" "[ ! -e $D/kept-stopped ]"
check "nor restart it: started once before the switch, once by its restore" \
	"[ \$(wc -l < $D/kept-starts) = 2 ] && [ \"\$(systemctl show -p NRestarts --value $U)\" = 0 ]"
check "demo-mark.service (not kept) was stopped in order: its mark is on the disk" \
	"grep -q stopped-in-order $D/mark"
R "dmesg | grep -E 'EXT4-fs \\(vda\\)'"
note "$R_OUT"
if grep -q -E 'recovery complete|orphan' <<<"$R_OUT"; then
	not_ok "the new boot found the root filesystem clean (no ext4 recovery)"
else
	ok "the new boot found the root filesystem clean (no ext4 recovery)"
fi
# the unit's stderr is $OUT: its restore's messages are there
R "grep -a 'outage' $OUT"
note "$R_OUT"
if grep -q "kup restore: $U: outage [0-9]* ms" <<<"$R_OUT"; then
	ok "the restore printed the outage of $U (to the unit's stderr)"
else
	not_ok "the restore printed the outage of $U (to the unit's stderr)"
fi
R "kup status; kup status --json"
note "$R_OUT"
check "kup status reports the outage of $U (text and JSON)" \
	"kup status | grep -q '$U: outage [0-9]* ms' &&
	 kup status --json | python3 -c 'import json,sys; s = json.load(sys.stdin)[\"last_switch\"][\"services\"][0];
assert s[\"name\"] == \"$U\" and s[\"state\"] == \"restored\" and s[\"outage_ms\"] >= 0, s'"
check "no drop-in of the switch is left" "[ -z \"\$(ls /run/systemd/system/*.d/50-kup-switch.conf 2>/dev/null)\" ]"

# ---- a dump that fails in the shutdown: the services start cold (a clean
# switch's failure: nothing to see with --fast)
case " $args " in *" --fast "* | *" --no-shutdown "*) finish ;; esac
R "touch $D/stray; systemctl is-active -q demo-mark.service || systemctl start demo-mark.service"
pid=$(L run "systemctl show -p MainPID --value $U")
note "kup switch $A --unit $U, with a stray process put into $U's cgroup by demo-mark's stop"
"$lab" run "kup switch $A --unit $U >/root/switch2.log 2>&1" >/dev/null 2>&1
L wait-boot "$A" --timeout 400 || bail "the guest did not come back on $A"
ok "the guest came back on $(L run uname -r)"
note "$(grep -a -E 'kup switch' "$con" | tail -n 8)"
check "$U is active, started cold (a new main pid)" \
	"for i in \$(seq 150); do systemctl is-active -q $U && break; sleep 0.2; done;
	 p=\$(systemctl show -p MainPID --value $U); [ -n \"\$p\" ] && [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ]"
check "demo-mark.service was stopped in order again" "[ \$(grep -c stopped-in-order $D/mark) = 2 ]"
R "dmesg | grep -E 'EXT4-fs \\(vda\\)'"
if grep -q -E 'recovery complete|orphan' <<<"$R_OUT"; then
	not_ok "the shutdown went on cleanly (no ext4 recovery)"; note "$R_OUT"
else
	ok "the shutdown went on cleanly (no ext4 recovery)"
fi
R "kup status"
note "$R_OUT"
check "kup status says $U was not kept, the dump failed" "kup status | grep -q '$U: not kept: the dump failed'"
check "kup-restore.service said so at boot" \
	"journalctl -b -u kup-restore.service -o cat | grep -q 'did not keep $U'"
finish
