#!/bin/bash
# The configuration file (/etc/default/kup; KUP_CONFIG or --config name
# another) and what kup switch refuses before it loads a kernel or freezes
# anything (the lab's t-switch-units.sh does the switch itself):
#  - a file that is not KEY=value, or a value kup cannot use, is refused
#    naming the file and line; nothing to keep is a usage error;
#  - kup switch KERNEL alone keeps the units of KUP_UNITS; a unit that cannot
#    be kept, a pid that is gone, trees that share a pipe, a tree using
#    io_uring are refused naming them, before the kernel is loaded (KERNEL
#    does not even exist here);
#  - kup check reports on each tree (--json: with its "unit" or "pid");
#  - kup hold takes its timeout from KUP_HOLD_TIMEOUT;
#  - kup-generator gives each unit of /run/kup/unit its drop-in, whose
#    timer (kup hold --unit-done) removes only that unit's line, as
#    kup-cold@ does.
if [ -z "${KUP_T_CONFIG_NS:-}" ] && [ "$(id -u)" = 0 ]; then
	KUP_T_CONFIG_NS=1 exec unshare --net "$BASH" "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
require_root

K=$T/no-such-vmlinuz
C=$T/kup.conf
unset KUP_CONFIG
not_loaded() { ! grep -q "could not be loaded\|loading $K" "$T/err"; }

printf 'KUP_UNITS=a.service b.service\n' > "$C"
check_fails "a value with a space, unquoted" kup_try switch "$K" --config "$C"
check "it names the file and line" grep -q "$C:1: not KEY=value" "$T/err"
printf '# kept units\n\nKUP_UNITS="a.service ../b"\n' > "$C"
check_fails "a unit that is not a unit name" kup_try switch "$K" --config "$C"
check "it names the line and the word" grep -q "$C:3: KUP_UNITS: '../b' is not the name of a service unit" "$T/err"
check "exit status 2 (usage)" eval 'kup_try switch "$K" --config "$C" 2>/dev/null; [ $? = 2 ]'
for kv in KUP_TCP_ESTABLISHED=maybe KUP_EXTERNAL_PEERS=keep KUP_HOLD_TIMEOUT=-3 KUP_STORE=relative KUP_PANIC=soon \
	  KUP_PRE_DUMP=sometimes KUP_PRE_DUMP=101 \
	  KUP_RESTORE_MEMORY=sometimes \
	  'KUP_UNITS="a.service a.service"'; do
	printf '%s\n' "$kv" > "$C"
	check_fails "$kv is refused" kup_try switch "$K" --config "$C"
	check "naming ${kv%%=*}" grep -q "$C:1: ${kv%%=*}" "$T/err"
done
check_fails "--config FILE that does not exist" kup_try switch "$K" --config "$T/nothing"
check "it says so" grep -q "cannot read the configuration file $T/nothing" "$T/err"
check_fails "KUP_CONFIG=FILE that does not exist" eval 'KUP_CONFIG=$T/nothing kup_try switch "$K"'
printf 'OTHER_TOOL=1\nKUP_TCP_ESTABLISHED=yes\n' > "$C"
check_fails "a file without KUP_UNITS, no unit given: nothing to keep" kup_try switch "$K" --config "$C"
check "it says so, naming the file" grep -q "nothing to keep: .*in $C (KUP_UNITS" "$T/err"

printf 'KUP_UNITS="kup-t-none-a.service kup-t-none-b.service"\nKUP_FUTURE=1\n' > "$C"
check_fails "kup switch KERNEL alone keeps KUP_UNITS" eval 'KUP_CONFIG=$C kup_try switch "$K"'
check "it says which units it keeps" grep -q "keeping 2 units named in $C (KUP_UNITS)" "$T/err"
check "an unknown KUP_ key is a warning" grep -q "$C:2: KUP_FUTURE is not a setting of kup" "$T/err"
check "the first unit is refused by name, nothing changed" \
	grep -q "kup-t-none-a.service cannot be kept: nothing was changed" "$T/err"
check "before the kernel is loaded" not_loaded
check_fails "the command line wins: --unit c.service" \
	eval 'KUP_CONFIG=$C kup_try switch "$K" --unit kup-t-none-c.service'
check "it is the one refused" eval 'grep -q "kup-t-none-c.service cannot be kept" "$T/err" && ! grep -q none-a "$T/err"'

# trees that share a pipe: refused before the kernel is loaded
exec 7> >(exec setsid cat > /dev/null)
y=$!
setsid "$PROGS/counter" >&7 2>/dev/null < /dev/null &
x=$!
exec 7>&-
track "$x"; track "$y"
sleep 0.3
check_fails "kup switch -t $x -t $y (sharing a pipe)" kup_try switch "$K" -t "$x" -t "$y" --config /dev/null
check "refused naming both and the pipe" grep -q "the tree of pid $x and the tree of pid $y share a pipe" "$T/err"
check "nothing was changed, the kernel not loaded" eval 'grep -q "cannot be kept together: nothing was changed" "$T/err" && not_loaded'
check "both run on, not frozen" eval 'not_frozen $x && not_frozen $y'
kill_tree "$x"
wait_gone "$x"
check_fails "kup switch -t PID of a process that is gone" kup_try switch "$K" -t "$x" --config /dev/null
check "it says so, nothing changed" eval 'grep -q "pid $x: no such process: nothing was changed" "$T/err" && not_loaded'
kill_tree "$y"

# a tree holding what the dump refuses before it freezes (io_uring): refused
# before the kernel is loaded
mkfifo "$T/iofifo"
iou=$(start_bg "$T/iou" "$PROGS/iouring" "$T/iofifo")
if wait_for_line "$T/iou" '^C 2 ' && ! grep -q '^ERROR' "$T/iou"; then
	check_fails "kup switch -t $iou (io_uring)" kup_try switch "$K" -t "$iou" --config /dev/null
	check "refused naming the pid and io_uring, nothing changed, the kernel not loaded" \
		eval 'grep -q "pid $iou: uses io_uring" "$T/err" && grep -q "the tree of pid $iou cannot be kept: nothing was changed" "$T/err" && not_loaded'
else
	ok "# SKIP io_uring does not work here"
fi
kill_tree "$iou"

# ---- kup check, per tree --------------------------------------------------------
a=$(start_bg "$T/a" "$PROGS/counter")
b=$(start_bg "$T/b" "$PROGS/counter")
wait_for_line "$T/a" '^C 1 ' && wait_for_line "$T/b" '^C 1 ' || bail "counters did not start"
"$KUP" check -t "$a" -t "$b" --config /dev/null --json > "$T/check.json" 2> "$T/check.err"
note "$(cat "$T/check.json")"
js() { python3 -c "import json, sys; c = json.load(open('$T/check.json')); sys.exit(0 if ($1) else 1)"; }
check "kup check --json -t A -t B: a tree check for each, with its pid" \
	js "sorted(x['pid'] for x in c if x['check'] == 'tree' and x['status'] == 'ok') == sorted([$a, $b])"
check "and a restore check for each" js "sorted(x.get('pid') for x in c if x['check'] == 'restore') == sorted([$a, $b])"
check "and one check of the two together, ok" js "[x['status'] for x in c if x['check'] == 'together'] == ['ok']"
printf 'KUP_UNITS="kup-t-none-a.service kup-t-none-b.service"\n' > "$C"
"$KUP" check --config "$C" --json > "$T/check.json" 2> "$T/check.err"
check "kup check (no tree given): the config check names the file and its units" \
	js "any(x['check'] == 'config' and x['status'] == 'ok' and '2 units' in x['message'] for x in c)"
check "a tree check for each unit of KUP_UNITS, failed, with its unit" \
	js "sorted(x['unit'] for x in c if x['check'] == 'tree' and x['status'] == 'fail') == ['kup-t-none-a.service', 'kup-t-none-b.service']"
printf 'KUP_UNITS=bad\n' > "$C"
check_fails "kup check with a bad file" kup_try check --config "$C"
check "it reports FAIL config" eval '"$KUP" check --config "$C" 2>/dev/null | grep -q "^FAIL config"'

# ---- kup hold: KUP_HOLD_TIMEOUT ------------------------------------------------------
S=$T/store.ppp
check "kup ppp format" kup_run "$T/fmt.log" ppp format "$S" --size 32M
check "kup dump -t $a -t $b into it" kup_run "$T/dump.log" dump -t "$a" -t "$b" --ppp "$S"
printf 'KUP_HOLD_TIMEOUT=1\n' > "$C"
check "kup hold with KUP_HOLD_TIMEOUT=1" eval 'KUP_CONFIG=$C kup_run $T/hold.log hold --ppp "$S" --log "$T/holder.log"'
holder=$(sed -n 's/.*(holder pid \([0-9]*\)).*/\1/p' "$T/hold.log")
[ -n "$holder" ] && track "$holder"
check "it lets go by itself after 1 s" wait_for "grep -q 'no restore asked within 1 s' $T/holder.log" 15
check "kup restore brings both back" kup_run "$T/restore.log" restore --ppp "$S" -d
track "$a"; track "$b"
check "both count on" eval 'alive $a && alive $b'
kill_tree "$a"; kill_tree "$b"

# ---- kup-generator and kup-cold@, several units --------------------------------------
GEN=$(dirname "$0")/../../systemd-units/kup-generator
COLD=$(dirname "$0")/../../systemd-units/kup-cold@.service
[ -e /run/kup/unit ] && bail "/run/kup/unit exists on this machine: not touching it"
mkdir -p /run/kup
at_exit 'rm -f /run/kup/unit /run/kup/unit.new /run/kup/unit.lock'
printf 'memcached.service\nkup-demo@one.service\n' > /run/kup/unit
rm -rf "$T/gen"; mkdir "$T/gen"
sh "$GEN" "$T/gen" "$T/gen" "$T/gen"
check "kup-generator: a drop-in for each unit of /run/kup/unit" \
	eval '[ -f $T/gen/memcached.service.d/50-kup-restore.conf ] && [ -f "$T/gen/kup-demo@one.service.d/50-kup-restore.conf" ]'
check "each restoring its own unit" \
	grep -q -- '--unit kup-demo@one.service ' "$T/gen/kup-demo@one.service.d/50-kup-restore.conf"
cmd=$(sed -n 's/^ExecStart=-\(\/usr\/bin\/flock .*\)$/\1/p' "$COLD" | sed 's/%i/kup-demo@one.service/g')
check "kup-cold@ has its clean-up command" [ -n "$cmd" ]
eval "$cmd"
check "which removes only its own unit's line" eval '[ "$(cat /run/kup/unit)" = memcached.service ]'
check "the drop-in's timer runs kup hold --unit-done once the unit runs" \
	grep -qx 'ExecStartPost=+/bin/systemd-run --quiet --no-block --on-active=1 --unit=kup-reload-memcached.service /usr/sbin/kup hold --unit-done memcached.service' \
	"$T/gen/memcached.service.d/50-kup-restore.conf"
check "the timer of an instance has no @ in its name" \
	grep -q -- '--unit=kup-reload-kup-demo_one.service ' "$T/gen/kup-demo@one.service.d/50-kup-restore.conf"
printf 'memcached.service\nkup-demo@one.service\n' > /run/kup/unit
"$KUP" hold --unit-done memcached.service > "$T/done.log" 2>&1
check "kup hold --unit-done memcached.service removes its own line only" \
	eval '[ "$(cat /run/kup/unit)" = kup-demo@one.service ]'
"$KUP" hold --unit-done kup-demo@one.service > "$T/done.log" 2>&1
check "... and the file with the last line" eval '[ ! -e /run/kup/unit ]'
check_fails "kup hold --unit-done with no unit name" kup_try hold --unit-done ../x
