#!/bin/bash
# Several services in one `kup switch`, in the QEMU lab: two instances of a
# demo counter template (kup-demo@one, kup-demo@two) and Debian's
# memcached.service, with keys in it, named in /etc/default/kup (KUP_UNITS),
# kept across 6.1.0-47 -> 6.1.0-56 by `kup switch KERNEL` alone.  One store
# commit holds the three trees; the initramfs' kup hold holds the PIDs of all
# three; each unit's start restores its own tree.  kup-demo@two's part is
# damaged before the kexec: its restore fails and it starts cold, alone,
# while kup-demo@one (its counter continuing, same PID) and memcached (same
# PID, its keys there) are restored.  Once no other tree is left to
# restore, the store keeps kup-demo@two's failed part only, for another try
# (kup switch --from-store), and kup ppp verify names its damage.  Before that, kup switch refuses a unit that does not
# exist, naming it, and loads nothing.
#
# KUP_LAB_RESTORE_MEMORY=lazy: KUP_RESTORE_MEMORY=lazy in the guest's
# /etc/default/kup: each unit's tree runs before its memory is back
# (kup-lazy fills it, then drops the unit's part from the store).
# kup-demo@two's damaged page is then found after its tree runs: kup-lazy
# kills that tree (or the restore fails before it runs, if that extent
# holds pages restored eagerly too) and kup-cold@ starts the unit cold; its
# part stays.
set -u
MEM=${KUP_LAB_RESTORE_MEMORY:-}

export KUP_LAB_NAME=${KUP_LAB_NAME:-switch-units}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
A=${KUP_LAB_A:-6.1.0-47-amd64}
B=${KUP_LAB_B:-6.1.0-56-amd64}
PROGS=${PROGS:-$top/build/progs}
GP=/usr/local/libexec/kup-tests
MC=memcached.service
D1=kup-demo@one.service
D2=kup-demo@two.service
KEYS=500

# mc OP: "set" stores KEYS keys, "get" checks them and prints "GOT n"
mc() { mc_client "$1" "$KEYS" value x 200; }
main_pid() { L run "systemctl show -p MainPID --value $1"; }
# the counter's lines (C n pid ms) in OUT: every value once, in order; the
# pid PID from line 1 to the end, at least MIN lines after line BEFORE
continues() {
	echo "awk -v pid=$2 -v before=$3 -v min=$4 '
		\$1 != \"C\" { next }
		\$2 != n || \$3 != pid { print \"line \" NR \": \" \$0 \" (want count \" n \" pid \" pid \")\"; bad = 1; exit }
		{ n++; if (NR > before) new++ }
		END { if (bad) exit 1; if (new < min) { print \"only \" new \" new lines\"; exit 1 } }' $1"
}

[ -x "$PROGS/counter" ] || bail "$PROGS/counter is missing (make progs)"
L build || bail "lab build"
"$lab" stop >/dev/null 2>&1
L boot "$A" || bail "boot $A"
ok "booted $A"
R 'command -v kup' || bail "kup is not installed in the guest (tests/vm/run-lab-tests.sh installs it)"
R "mkdir -p $GP" && L cp-in "$PROGS/counter" "$GP/counter" || bail "copy the counter in"
check "kup-demo@.service: a counter template unit (kup's messages to the journal)" "cat > /etc/systemd/system/kup-demo@.service <<'UNIT'
[Unit]
Description=kup lab demo counter %i
[Service]
ExecStart=$GP/counter -m 16 -i 200
StandardOutput=append:/root/demo-%i.out
StandardError=journal
UNIT
systemctl daemon-reload"
check "/etc/default/kup names the three units${MEM:+, KUP_RESTORE_MEMORY=$MEM}" \
	"printf 'KUP_UNITS=\"%s %s %s\"\nKUP_HOLD_TIMEOUT=900\n' $D1 $MC $D2 > /etc/default/kup &&
	 if [ -n '$MEM' ]; then echo KUP_RESTORE_MEMORY=$MEM >> /etc/default/kup; fi"
check "systemctl enable kup-restore.service" 'systemctl enable kup-restore.service 2>&1'
check "kup ppp format /dev/pmem0" 'udevadm settle -t 30; kup ppp format /dev/pmem0 --force'
check "update-initramfs -u -k $B (kup's hook, the configuration file)" \
	"update-initramfs -u -k $B >/dev/null 2>&1 && lsinitramfs /boot/initrd.img-$B | grep -qx etc/default/kup"
check "start $D1, $D2 and $MC" \
	"systemctl start $D1 $D2 $MC && for i in \$(seq 100); do ss -ltn | grep -q :11211 &&
	 grep -q '^C 5 ' /root/demo-one.out && grep -q '^C 5 ' /root/demo-two.out && exit 0; sleep 0.2; done; exit 1"
R "$(mc set)"
grep -q "GOT $KEYS" <<<"$R_OUT" && ok "$KEYS keys stored in memcached" || bail "store keys: $R_OUT"
p1=$(main_pid $D1) p2=$(main_pid $D2) pm=$(main_pid $MC)
ok "main pids: $D1 $p1, $D2 $p2, $MC $pm"

R "kup check $B"
rc=$?
note "$R_OUT"
if [ $rc = 0 ] && grep -q "checks: 0 failed" <<<"$R_OUT" && [ "$(grep -c '^ok   tree ' <<<"$R_OUT")" = 3 ]; then
	ok "kup check $B: a tree check for each unit of KUP_UNITS, every check passes"
else
	not_ok "kup check $B: a tree check for each unit of KUP_UNITS, every check passes"
fi
check_fails "kup switch $B --unit $D1 --unit kup-nothing.service fails" \
	"kup switch $B --unit $D1 --unit kup-nothing.service 2>&1"
note "$R_OUT"
if grep -q "kup-nothing.service: no such unit" <<<"$R_OUT" && grep -q "nothing was changed" <<<"$R_OUT"; then
	ok "it names the unit and the reason: nothing was changed"
else
	not_ok "it names the unit and the reason: nothing was changed"
fi
check "... loads nothing, and $D1 runs on" "! kup kexec status >/dev/null && [ \"\$(systemctl show -p MainPID --value $D1)\" = $p1 ]"

check "kup switch $B --no-exec (the units of /etc/default/kup)" "kup switch $B --no-exec >/root/switch.log 2>&1"
note "$(L run 'cat /root/switch.log')"
check "it kept the three units named in the file" "grep -q 'keeping 3 units named in /etc/default/kup' /root/switch.log"
check "one commit: parts.img and p1/ p2/ p3/ in the store" \
	"kup ppp ls /dev/pmem0 | grep -q '^parts.img ' && kup ppp ls /dev/pmem0 | grep -q '^p3/inventory.img '"
n1=$(L run "wc -l < /root/demo-one.out")
# D2 is the third part (the order of KUP_UNITS): damage its memory image
off=$(L run "kup ppp ls /dev/pmem0 --json | python3 -c 'import json,sys; print([b[\"offset\"] for b in json.load(sys.stdin) if b[\"name\"] == \"p3/pages-$p2.img\"][0])'")
check "flip one byte of p3/pages-$p2.img ($D2's; offset ${off:-?}) on /dev/pmem0" \
	"[ -n '$off' ] && printf 'X' | dd of=/dev/pmem0 bs=1 seek=$((off + 4096 + 77)) conv=notrunc,fsync status=none"
t0=$(date +%s.%N)
"$lab" run "kup kexec exec >/dev/null 2>&1" >/dev/null 2>&1
L wait-boot "$B" --timeout 600 || bail "the guest did not come back on $B"
ok "the guest came back on $(L run uname -r) after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
check "kup hold held the PIDs of the three trees from the start of the boot" \
	"dmesg | grep 'kup hold: holding the PIDs' > /tmp/hold.txt && grep -qw $p1 /tmp/hold.txt &&
	 grep -qw $pm /tmp/hold.txt && grep -qw $p2 /tmp/hold.txt"
check "$D1, $MC and $D2 are active" \
	"for i in \$(seq 900); do systemctl is-active -q $D1 $MC $D2 && exit 0; sleep 0.2; done; exit 1"
note "$(L run "journalctl -b -u $D1 -u $MC -u $D2 -u kup-cold@$D2.service --no-pager -o cat | grep -v '^C ' | tail -n 25")"
check "$D1: main pid $p1 as before, restored by its start" \
	"[ \"\$(systemctl show -p MainPID --value $D1)\" = $p1 ] && grep -q '/$D1\$' /proc/$p1/cgroup &&
	 journalctl -b -u $D1 -o cat | grep -q 'kup restore: restored .*(root pid $p1)'"
check "its counter continues: every value once, pid $p1" \
	"sleep 2; $(continues /root/demo-one.out "$p1" "$n1" 3)"
check "$MC: main pid $pm as before, restored by its start" \
	"[ \"\$(systemctl show -p MainPID --value $MC)\" = $pm ] && journalctl -b -u $MC -o cat | grep -q 'kup restore: restored .*(root pid $pm)'"
R "$(mc get)"
grep -q "GOT $KEYS" <<<"$R_OUT" && ok "all $KEYS keys are in memcached" || { not_ok "all $KEYS keys are in memcached"; note "$R_OUT"; }
if [ "$MEM" = lazy ]; then
	check "$D1 and $MC were restored lazily, their memory complete" \
		"for u in $D1 $MC; do journalctl -b -u \$u -o cat | grep -q 'KUP_RESTORE_MEMORY=lazy' || exit 1; done
		 for i in \$(seq 900); do [ \$(journalctl -b -u $D1 -u $MC -o cat | grep -c \"the tree's memory is complete\") -ge 2 ] && exit 0; sleep 0.2; done; exit 1"
	# (the damage is found when kup-lazy reads it, or before the tree runs
	# if the extent holds pages restored eagerly too)
	check "$D2: killed whole when kup-lazy reached the damaged page, or not run at all" \
		"for i in \$(seq 900); do journalctl -b -u $D2 -o cat | grep -Eq 'killing the whole tree|its part is kept \(marked failed\)' && exit 0; sleep 0.2; done; exit 1"
else
	check "$D2: its restore failed, saying its part is kept" \
		"journalctl -b -u $D2 -o cat | grep -q 'its part is kept (marked failed)'"
fi
check "kup-cold@$D2 started it cold" \
	"for i in \$(seq 900); do journalctl -b -u kup-cold@$D2.service -o cat | grep -q 'Finished kup-cold@' && exit 0; sleep 0.2; done; exit 1"
np2=$(main_pid $D2)
check "$D2 runs with a new main pid ($np2), its counter from 0" \
	"[ -n '$np2' ] && [ '$np2' != 0 ] && [ '$np2' != $p2 ] && grep -q '^C 0 $np2 ' /root/demo-two.out"
check "/run/kup/unit is gone, the store keeps only $D2's failed part (for another try)" \
	"for i in \$(seq 900); do [ ! -e /run/kup/unit ] && ! kup ppp ls /dev/pmem0 | grep -q '^p[12]/' && kup ppp ls /dev/pmem0 | grep -q '^p3/inventory.img ' && exit 0; sleep 0.2; done; exit 1"
check "kup ppp verify names the damage of that part" \
	"! kup ppp verify /dev/pmem0 > /tmp/verify.txt 2>&1 && grep -q 'p3/pages-$p2.img' /tmp/verify.txt"
check "systemctl stop $D1 stops the restored counter" "systemctl stop $D1 && ! kill -0 $p1 2>/dev/null"
finish
