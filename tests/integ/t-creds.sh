#!/bin/bash
# A process running as nobody with extra groups, umask 027, no_new_privs,
# RLIMIT_NOFILE soft 777, personality ADDR_NO_RANDOMIZE, oom_score_adj 345,
# its own cwd and comm comes back with every one of them, as the kernel shows
# them in /proc and as the process reads them itself.
. "$(dirname "$0")/../lib.sh"
require_root

mkdir -p "$T/work dir"
chmod 755 "$T" "$T/work dir"
pid=$(start_bg "$T/out" "$PROGS/creds" "$T/work dir")
wait_for_line "$T/out" '^STATE ' || bail "creds did not start"

# What the kernel says about pid $1 (limits from /proc: root has no
# CAP_SYS_RESOURCE here, so prlimit on another uid's task would fail).
settings() {
	grep -E '^(Uid|Gid|Groups|Umask|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb|Seccomp):' /proc/$1/status
	grep -E '^Max open files' /proc/$1/limits
	echo "personality $(cat /proc/$1/personality)"
	echo "oom_score_adj $(cat /proc/$1/oom_score_adj)"
	echo "comm $(cat /proc/$1/comm)"
	echo "cwd $(readlink /proc/$1/cwd)"
}
before=$(settings "$pid")
note "$before"
check "set up as intended before the dump" eval '
	grep -qE "^Uid:\s+65534\s+65534\s+65534\s+65534$" <<< "$before" &&
	grep -qE "^Groups:\s+100 4242 65534\s*$" <<< "$before" &&
	grep -qE "^Umask:\s+0027$" <<< "$before" &&
	grep -qE "^NoNewPrivs:\s+1$" <<< "$before" &&
	grep -qE "^Max open files\s+777\s" <<< "$before" &&
	grep -q "^personality 00040000$" <<< "$before" &&
	grep -q "^oom_score_adj 345$" <<< "$before" &&
	grep -q "^comm kup-creds$" <<< "$before" &&
	grep -q "^cwd $T/work dir$" <<< "$before"'
check "its self-check passes before the dump" request_check "$pid" "$T/out"

dump_and_restore "$pid" "$T/img" || exit 1
after=$(settings "$pid")
check "/proc shows the same credentials, limits, personality, oom_score_adj, comm and cwd" \
	diff <(echo "$before") <(echo "$after")
check "the process reads back the same settings itself" request_check "$pid" "$T/out"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
