#!/bin/bash
# Services as trees, what can be shown without systemd (the lab's
# t-switch-unit.sh shows the rest): kup dump --unit refuses what is not a
# running service and dumps nothing; kup restore --unit/--no-unit restore
# only the checkpoint asked for (--if-any: exit 0 otherwise) and leave the
# store as it was; kup-generator turns the start of the unit named in
# /run/kup/unit into a restore, and ignores anything that is not a unit name.
. "$(dirname "$0")/../lib.sh"
require_root

S=$T/store.ppp
GEN=$(dirname "$0")/../../systemd-units/kup-generator
check "kup ppp format $S" kup_run "$T/fmt.log" ppp format "$S" --size 64M
has_ckpt() { "$KUP" ppp status "$S" --json | grep -q '"checkpoint": true'; }

check_fails "kup dump --unit with a name that is not a service" kup_try dump --unit 'a b' --ppp "$S"
check "it says so" grep -q "not the name of a service unit" "$T/err"
if [ -d /run/systemd/system ]; then
	check_fails "kup dump --unit of a unit that does not exist" \
		kup_try dump --unit kup-test-nothing.service --ppp "$S"
	check "it says so" grep -q "kup-test-nothing.service: no such unit" "$T/err"
else
	check_fails "kup dump --unit where systemd does not run" kup_try dump --unit cron.service --ppp "$S"
	check "it says so" grep -q "systemd is not running here" "$T/err"
fi
check_fails "kup dump -t and --unit together" kup_try dump -t 1 --unit cron.service --ppp "$S"
check "nothing was written to the store" eval '! has_ckpt'

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 2 ' || bail "counter did not start"
check "kup dump -t $pid --ppp (no unit)" kup_run "$T/dump.log" dump -t "$pid" --ppp "$S"
wait_gone "$pid" || true
check_fails "kup restore --unit x.service of a checkpoint that is no service's" \
	kup_try restore --ppp "$S" -d --unit x.service
check "it says whose it is" grep -q "(tree of pid $pid) is no service's, not x.service's" "$T/err"
check "nothing restored, the store keeps the checkpoint" eval '[ ! -d /proc/$pid ] && has_ckpt'
check "with --if-any: exit 0, nothing restored" \
	eval 'kup_try restore --ppp "$S" -d --unit x.service --if-any && [ ! -d /proc/$pid ] && has_ckpt'
check_fails "--unit and --no-unit together" kup_try restore --ppp "$S" --unit x.service --no-unit
check_fails "--unit with a name that is not a service" kup_try restore --ppp "$S" --unit ../x
check "kup restore --no-unit restores it" kup_run "$T/restore.log" restore --ppp "$S" -d --no-unit ||
	note "$(cat "$T/restore.log")"
track "$pid"
check "pid $pid counts on" eval 'n=$(lines_count "$T/out" "^C "); wait_for "[ \$(lines_count $T/out \"^C \") -gt \$((n + 3)) ]" 5'
kill_tree "$pid"

# ---- kup-generator ----------------------------------------------------------------
[ -e /run/kup/unit ] && bail "/run/kup/unit exists on this machine: not touching it"
mkdir -p /run/kup
at_exit 'rm -f /run/kup/unit; rmdir /run/kup 2>/dev/null'
gen() { rm -rf "$T/gen"; mkdir "$T/gen"; sh "$GEN" "$T/gen" "$T/gen.early" "$T/gen.late"; }
drop=$T/gen/memcached.service.d/50-kup-restore.conf
check "without /run/kup/unit it writes nothing" eval 'gen && [ -z "$(ls -A "$T/gen")" ]'
echo memcached.service > /run/kup/unit
check "with memcached.service in /run/kup/unit it writes a drop-in" eval 'gen && [ -f "$drop" ]'
note "$(cat "$drop" 2>/dev/null)"
check "whose start is the restore of that unit, privileged, into its PID file" \
	grep -qx 'ExecStart=+/usr/sbin/kup restore --ppp auto -d --unit memcached.service --tcp-established --pidfile /run/kup/memcached.service.pid' "$drop"
check "which replaces the unit's own start (ExecStart= first)" \
	eval 'grep -x "ExecStart=.*" "$drop" | head -n 1 | grep -qx "ExecStart="'
check "Type=forking with that PID file" \
	eval 'grep -qx "Type=forking" "$drop" && grep -qx "PIDFile=/run/kup/memcached.service.pid" "$drop"'
check "the restore may open the store's device (no device policy while it starts)" \
	eval 'grep -qx "PrivateDevices=no" "$drop" && grep -qx "DevicePolicy=auto" "$drop" && grep -qx "DeviceAllow=" "$drop"'
check "a failure starts it cold (OnFailure=kup-cold@)" grep -qx 'OnFailure=kup-cold@memcached.service.service' "$drop"
uf=/etc/systemd/system/kup-test-$$.service
if [ -d /etc/systemd/system ] && [ ! -e "$uf" ]; then
	printf '[Service]\nExecStart=/bin/true\n' > "$uf"
	at_exit "rm -f $uf"
	echo "kup-test-$$.service" > /run/kup/unit
	check "the unit is started at boot, enabled or not (multi-user.target.wants)" \
		eval 'gen && [ "$(readlink "$T/gen/multi-user.target.wants/kup-test-$$.service")" = "$uf" ]'
	rm -f "$uf"
fi
for bad in '../etc/passwd.service' 'a b.service' 'memcached' '-x.service' 'x.service;rm'; do
	printf '%s\n' "$bad" > /run/kup/unit
	check "'$bad' is not a unit name: nothing written" eval 'gen && [ -z "$(ls -A "$T/gen")" ]'
done
