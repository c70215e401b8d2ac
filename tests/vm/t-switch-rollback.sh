#!/bin/bash
# Rollback in the QEMU lab: a new kernel that does not come up brings the
# machine back on the old one, where the kept service is restored from the
# store.
#   - The machine boots 6.1.0-47 the way firmware boots its default entry:
#     qemu without -no-reboot (lab boot --reboot), so a reboot or a panic
#     resets it and it boots 47 again, with 47's initrd carrying kup's hook
#     (made in the guest by update-initramfs, booted by qemu).  A reset keeps
#     the RAM, the store's memmap= region with it.
#   - `kup switch 6.1.0-56 --unit memcached.service --append
#     rdinit=/kup-no-such-init`: a clean switch; 56 comes up without an
#     init it can find, cannot mount a root by itself and panics; kup loaded
#     it with panic=10 (its default, in place of the lab's panic=-1), so it
#     reboots 10 s later; the firmware boots 47; the initramfs' kup hold
#     holds the kept PIDs and names the unit; memcached.service's start
#     restores it: the same main PID, its keys; kup status says the switch
#     came back on 47.
#   - 56 comes up but cannot restore the service (on 56 only, another unit
#     takes memcached's port first): memcached starts cold there (its
#     restore failed), the store keeps the checkpoint, sound (kup ppp
#     verify); `kup switch 6.1.0-47 --from-store` takes it back to 47: the
#     same main PID, its keys.
#   - Again with the store damaged after the dump (kup switch --no-exec,
#     one byte of the service's pages flipped on /dev/pmem0, kup kexec
#     exec): 56 panics, 47 comes up, the restore finds the checksum wrong
#     before anything runs, and memcached.service starts cold, the reason in
#     its journal; the store keeps the checkpoint, and kup ppp verify names
#     the bad extent.
set -u

export KUP_LAB_NAME=${KUP_LAB_NAME:-rollback}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
# B's way to fail: no such init in its initrd, and no root it can mount
# without its initramfs (virtio_blk is a module): "VFS: Unable to mount root fs"
FAIL_ARGS=rdinit=/kup-no-such-init
U=memcached.service
KEYS=2000

# mc OP: "set" stores KEYS keys, "get" checks them and prints "GOT n"
mc() { mc_client "$1" "$KEYS" rollback y 200; }
main_pid() { L run "systemctl show -p MainPID --value $U"; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# the console since the line $1 (the serial log is one file across resets)
console_from() { tail -n +"$1" "$("$lab" console)" | tr -d '\r'; }
console_lines() { wc -l < "$("$lab" console)"; }

L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
STATE=$("$lab" state)
INITRD=$STATE/initrd.img-$A-kup

# ---- the kernels' initrds with kup's hook ($A's: the default boot entry's)
L boot "$A" || bail "boot $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
check "update-initramfs -u -k $A and -k $B (kup's hook)" \
	"update-initramfs -u -k $A >/dev/null 2>&1 & update-initramfs -u -k $B >/dev/null 2>&1 && wait \$!"
check "... they carry kup's hook" \
	"lsinitramfs /boot/initrd.img-$A | grep -qx scripts/init-top/kup && lsinitramfs /boot/initrd.img-$B | grep -qx scripts/init-top/kup"
L cp-out "/boot/initrd.img-$A" "$INITRD" || bail "cp-out the initrd of $A"
L cp-out "/boot/initrd.img-$B" "$STATE/initrd.img-$B-kup" || bail "cp-out the initrd of $B"
"$lab" stop >/dev/null 2>&1

# ---- the machine: firmware boots $A with that initrd, reboots reset it
L boot "$A" --reboot --initrd "$INITRD" || bail "boot $A --reboot"
ok "booted $A with kup's hook in its initrd, qemu resets on a reboot"
L cp-in "$INITRD" "/boot/initrd.img-$A" && L cp-in "$STATE/initrd.img-$B-kup" "/boot/initrd.img-$B" ||
	bail "cp-in the initrds"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "systemctl start $U" "systemctl start $U && $mc_listening"
R "$(mc set)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "$KEYS keys stored in memcached"; else bail "store keys: $R_OUT"; fi
pid=$(main_pid)
ok "$U runs: main pid $pid"
R 'cat /proc/sys/kernel/random/boot_id'
boot0=$R_OUT

# ---- 1. the new kernel panics: back on the old one, the service restored
c0=$(console_lines)
t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U --append $FAIL_ARGS >/root/switch.log 2>&1" >/dev/null 2>&1
L wait-boot "$A" --timeout 900 || bail "the guest did not come back on $A"
note "kup switch to the old kernel answering again: $(secs_since "$t0")s"
R 'cat /proc/sys/kernel/random/boot_id; uname -r'
note "$R_OUT"
if [ "$(head -n1 <<<"$R_OUT")" != "$boot0" ] && grep -qx "$A" <<<"$R_OUT"; then
	ok "the guest came back on $A, a new boot"
else
	not_ok "the guest came back on $A, a new boot"
fi
con=$(console_from "$c0")
note "$(grep -a -E 'Linux version|Command line|Kernel panic|Rebooting in|kup hold' <<<"$con" | cut -c1-220)"
if grep -a 'Command line:' <<<"$con" | grep -a 'panic=10' | grep -a -- "$FAIL_ARGS" | grep -avq 'panic=-1'; then
	ok "kup loaded $B with panic=10 (in place of the lab's panic=-1) and --append"
else
	not_ok "kup loaded $B with panic=10 (in place of the lab's panic=-1) and --append"
fi
if awk "/Linux version ${B//./\\.} /{b=1} b && /Kernel panic - not syncing/{p=1} p && /Rebooting in 10 seconds/{r=1} r && /Linux version ${A//./\\.} /{ok=1} END{exit !ok}" <<<"$con"; then
	ok "$B panicked, rebooted after 10 s, and $A booted"
else
	not_ok "$B panicked, rebooted after 10 s, and $A booted"
fi
note "$(L run 'cat /root/switch.log')"
check "$U is active" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U --no-pager -o cat | tail -n 8")"
check "its main pid is $pid, as before the switch" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "its start was the restore from the store" \
	"journalctl -b -u $U -o cat | grep -q 'kup restore: restored .* (root pid $pid)'"
check "kup hold held its pids from the start of the boot" "dmesg | grep -q 'kup hold: holding the PIDs of the tree of pid $pid'"
R "$(mc get)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "all $KEYS keys are there"; else not_ok "all $KEYS keys are there"; note "$R_OUT"; fi
check "the store is scrubbed" \
	"for i in \$(seq 50); do [ ! -e /run/kup/unit ] && break; sleep 0.2; done;
	 kup ppp status /dev/pmem0 | grep -q 'checkpoint:   none'"
R 'kup status'
note "$R_OUT"
if grep -q "came back on $A" <<<"$R_OUT" && grep -q "$U: outage" <<<"$R_OUT"; then
	ok "kup status: the switch came back on $A, and the outage of $U"
else
	not_ok "kup status: the switch came back on $A, and the outage of $U"
fi

# ---- 2. the new kernel comes up but cannot restore the service: back with
# kup switch --from-store.  On $B only, kup-squat.service takes memcached's
# port before memcached's start, so its restore there fails (and its cold
# start too); the store keeps the checkpoint.
SQUAT="import socket, time
s = socket.socket()
s.bind(('127.0.0.1', 11211))
s.listen()
time.sleep(1e6)"
R "mkdir -p /usr/local/libexec && printf '%s\n' \"$SQUAT\" > /usr/local/libexec/kup-squat.py &&
printf '%s\n' '[Unit]' 'Description=takes 127.0.0.1:11211 on $B only (t-switch-rollback.sh)' \
	'ConditionKernelVersion=$B' 'Before=memcached.service' '[Service]' \
	'ExecStart=/usr/bin/python3 /usr/local/libexec/kup-squat.py' \
	'ExecStartPost=/bin/sh -c \"for i in \$(seq 300); do ss -ltn | grep -q 127.0.0.1:11211 && exit 0; sleep 0.1; done; exit 1\"' \
	'[Install]' 'WantedBy=multi-user.target' > /etc/systemd/system/kup-squat.service &&
systemctl daemon-reload && systemctl enable kup-squat.service 2>&1"
if [ $? = 0 ]; then ok "kup-squat.service enabled (it starts on $B only)"; else not_ok "kup-squat.service enabled"; note "$R_OUT"; fi
R "$(mc set)"
grep -q "GOT $KEYS" <<<"$R_OUT" || note "store keys: $R_OUT"
pid=$(main_pid)
t0=$(date +%s.%N)
"$lab" run "kup switch $B --unit $U >/root/switch.log 2>&1" >/dev/null 2>&1
L wait-boot "$B" --timeout 900 || bail "the guest did not come up on $B"
note "kup switch to $B answering: $(secs_since "$t0")s"
check "kup-squat.service took the port on $B" "systemctl is-active -q kup-squat.service"
check "$U's restore failed on $B, saying why" \
	"for i in \$(seq 300); do journalctl -b -u $U -o cat | grep -q 'kup restore: error' && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U -u kup-cold@$U.service --no-pager -o cat | tail -n 12")"
check "no process $pid on $B" "! grep -qs memcached /proc/$pid/comm"
check "the store keeps the checkpoint, sound (kup ppp verify)" \
	"kup ppp status /dev/pmem0 | grep -q 'checkpoint:   [0-9]* blob' && kup ppp verify /dev/pmem0"
t0=$(date +%s.%N)
"$lab" run "kup switch $A --from-store >/root/switch.log 2>&1" >/dev/null 2>&1
L wait-boot "$A" --timeout 900 || bail "the guest did not come back on $A"
note "kup switch --from-store back to $A answering: $(secs_since "$t0")s"
note "$(L run 'cat /root/switch.log')"
check "$U is active on $A" "for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
check "its main pid is $pid, as before the switch to $B" "[ \"\$(systemctl show -p MainPID --value $U)\" = $pid ]"
check "its start was the restore from the store" \
	"journalctl -b -u $U -o cat | grep -q 'kup restore: restored .* (root pid $pid)'"
R "$(mc get)"
if grep -q "GOT $KEYS" <<<"$R_OUT"; then ok "all $KEYS keys are there"; else not_ok "all $KEYS keys are there"; note "$R_OUT"; fi

# ---- 3. the same with the store damaged after the dump: a cold start
R "$(mc set)"
grep -q "GOT $KEYS" <<<"$R_OUT" || note "store keys: $R_OUT"
pid=$(main_pid)
check "kup switch $B --unit $U --no-exec --append $FAIL_ARGS" \
	"kup switch $B --unit $U --no-exec --append $FAIL_ARGS 2>&1"
off=$(L run "kup ppp ls /dev/pmem0 --json | python3 -c 'import json,sys; print([b[\"offset\"] for b in json.load(sys.stdin) if b[\"name\"] == \"pages-$pid.img\"][0])'")
check "flip one byte of pages-$pid.img (offset ${off:-?}) on /dev/pmem0" \
	"[ -n '$off' ] && printf 'Z' | dd of=/dev/pmem0 bs=1 seek=$((${off:-0} + 4096 + 99)) conv=notrunc,fsync status=none"
c0=$(console_lines)
t0=$(date +%s.%N)
"$lab" run "kup kexec exec >/dev/null 2>&1" >/dev/null 2>&1
L wait-boot "$A" --timeout 900 || bail "the guest did not come back on $A"
note "kup kexec exec to the old kernel answering again: $(secs_since "$t0")s"
if console_from "$c0" | awk "/Kernel panic - not syncing/{p=1} p && /Linux version ${A//./\\.} /{ok=1} END{exit !ok}"; then
	ok "$B panicked again, and $A booted"
else
	not_ok "$B panicked again, and $A booted"
fi
check "$U is active (started cold)" \
	"for i in \$(seq 150); do systemctl is-active -q $U && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $U -u kup-cold@$U.service --no-pager -o cat | tail -n 15")"
check "the restore refused the damaged pages (their extent's checksum), saying so in the unit's journal" \
	"journalctl -b -u $U -o cat | grep -q \"kup restore: error: /dev/pmem0: blob 'pages-$pid.img' extent .*expected\""
check "kup-cold@$U started it cold" "journalctl -b -u kup-cold@$U.service -o cat | grep -q 'Finished kup-cold@'"
newpid=$(main_pid)
check "a new main pid ($newpid), nothing of the damaged tree runs" \
	"[ -n '$newpid' ] && [ '$newpid' != $pid ] && ! grep -qs memcached /proc/$pid/comm"
R "$(mc get)"
if grep -q "GOT 0" <<<"$R_OUT"; then ok "the cold memcached is empty"; else not_ok "the cold memcached is empty"; note "$R_OUT"; fi
check "the store keeps the checkpoint" "kup ppp status /dev/pmem0 | grep -q 'checkpoint:   [0-9]* blob'"
check_fails "kup ppp verify finds the damage" "kup ppp verify /dev/pmem0 2>&1"
if grep -q "pages-$pid.img" <<<"$R_OUT"; then ok "... naming pages-$pid.img"; else not_ok "... naming pages-$pid.img"; note "$R_OUT"; fi
finish
