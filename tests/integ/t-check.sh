#!/bin/bash
# kup check tells, touching nothing, whether kup switch would work: each
# check one line (ok, warn, FAIL), exit 1 if one failed, --json for scripts.
# On this machine (no kexec, a file store) some checks must fail, naming
# why; the tree keeps running untraced and the store is unchanged.  The
# lab's t-switch.sh shows a machine where every check passes.
. "$(dirname "$0")/../lib.sh"
require_root

S=$T/store.ppp
check "kup ppp format $S --size 64M" kup_run "$T/fmt.log" ppp format "$S" --size 64M
pid=$(start_bg "$T/out" "$PROGS/counter" -m 100)
wait_for_line "$T/out" '^C 2 ' 30 || bail "counter -m 100 did not start"
sum=$(sha256sum < "$S")

check_fails "kup check -t $pid --ppp $S fails here" kup_try check -t "$pid" --ppp "$S"
cp "$T/err" "$T/check.out"
note "$(cat "$T/check.out")"
check "privileges: ok as root" grep -q '^ok   privileges' "$T/check.out"
check "tree: pid $pid (counter), 1 process, about 100 MiB" \
	grep -qE "^ok   tree +pid $pid \(counter\): 1 process, about 10[0-9] MiB" "$T/check.out"
check "store: FAIL, a file does not survive a kexec" \
	grep -q "^FAIL store .*$S is not persistent memory" "$T/check.out"
check "space: FAIL, 100 MiB do not fit 64 MiB" \
	grep -qE "^FAIL space +the tree needs about 1[0-9][0-9] MiB, the store holds 6[0-9] MiB" "$T/check.out"
check "a last line counts them" grep -qE '^[0-9]+ checks: [1-9][0-9]* failed' "$T/check.out"
check "the counter runs on, untraced" \
	eval 'alive $pid && grep -q "TracerPid:.0$" /proc/$pid/status && wait_for_line "$T/out" "^C 30 " 10'
check "the store is unchanged" eval '[ "$(sha256sum < "$S")" = "$sum" ]'
kup_try check --ppp "$T/no-store" > "$T/nostore.out" 2>&1
check "a store that is not there: its FAIL line names it, once" \
	eval 'grep -q "^FAIL store .*$T/no-store: .*No such file or directory" "$T/nostore.out" &&
	      [ "$(grep -c "$T/no-store" "$T/nostore.out")" = 1 ]' || note "$(cat "$T/nostore.out")"

check "kup ppp format $S --size 256M" kup_run "$T/fmt2.log" ppp format "$S" --size 256M --force
kup_try check -t "$pid" --ppp "$S" --json > "$T/check.json" 2>"$T/check.err"
check "--json: a list of {check, status, message}" python3 -c '
import json, sys
l = json.load(open(sys.argv[1]))
assert l and all(set(c) == {"check", "status", "message"} and c["status"] in ("ok", "warn", "fail") for c in l)
d = {c["check"]: c for c in l}
assert d["space"]["status"] == "ok", d["space"]
assert d["tree"]["status"] == "ok", d["tree"]
' "$T/check.json"

: > "$T/vmlinuz-9.9.9-kuptest"
check_fails "a kernel with no modules installed" kup_try check "$T/vmlinuz-9.9.9-kuptest"
check "kernel: warn, no initrd" grep -q "^warn kernel .*has no initrd" "$T/err"
check "modules: FAIL, naming /lib/modules/9.9.9-kuptest" grep -q "^FAIL modules .*/lib/modules/9.9.9-kuptest" "$T/err"
check "rollback: warn, this kernel's initrd ($(uname -r)) is not there" \
	grep -q "^warn rollback *$(uname -r): no initrd at /boot/initrd.img-$(uname -r)" "$T/err"
printf 'KUP_PANIC=0\n' > "$T/panic0.conf"
check_fails "kup check with KUP_PANIC=0" kup_try check "$T/vmlinuz-9.9.9-kuptest" --config "$T/panic0.conf"
check "rollback: warn with KUP_PANIC=0 (a panicking kernel stays)" grep -q "^warn rollback *KUP_PANIC=0" "$T/err"
check_fails "a kernel that does not exist" kup_try check /boot/vmlinuz-9.9.9-kuptest-none
check "kernel: FAIL, naming the path" grep -q "^FAIL kernel .*/boot/vmlinuz-9.9.9-kuptest-none" "$T/err"
mkdir "$T/vmlinuz-9.9.9-kupdir"
check_fails "a kernel path that is a directory" kup_try check "$T/vmlinuz-9.9.9-kupdir"
check "kernel: FAIL, not a regular file" grep -q "^FAIL kernel .*vmlinuz-9.9.9-kupdir: not a regular file" "$T/err"
check_fails "pid 1" kup_try check -t 1 --ppp "$S"
check "tree: FAIL, init cannot be kept" grep -q "^FAIL tree .*pid 1 cannot be kept (init)" "$T/err"
check_fails "a pid that does not exist" kup_try check -t 4194000 --ppp "$S"
check "tree: FAIL, no such process" grep -q "^FAIL tree .*no process 4194000" "$T/err"
check_fails "a user other than root" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$KUP" check
check "privileges: FAIL, naming the capabilities missing" grep -q "^FAIL privileges uid 65534 lacks CAP_SYS_ADMIN" "$T/err"
check_fails "-t and --unit together is a usage error" kup_try check -t 1 --unit x.service
