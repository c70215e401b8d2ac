#!/bin/bash
# A lazy restore fills first the pages the tree wrote last before the dump.
# With pre-dump rounds, those are the pages written since the last round
# (mm_image.hot_runs).  A process (tests/progs/dirtier) keeps rewriting 128
# MiB in turn, 2000 pages a second.  It is dumped with --pre-dump, restored with --lazy and
# stopped (SIGSTOP) at once, so it faults nothing more in, while the
# address-order pass is held (KUP_LAZY_HOLD_COLD).  Every hot page must
# then be present: filled by the background pass, not by the process's
# faults (it writes on after the hot pages, and wraps around only after
# 16 s).  Then the rest comes, and every page holds the generation the
# process's table says.
. "$(dirname "$0")/../lib.sh"
require_root

# pages PID IMGDIR WHAT: "hot PRESENT TOTAL" or "cold PRESENT TOTAL": pages
# of the image's hot runs (or of its other runs) present in PID's memory now
present() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, os, struct, subprocess, sys
pid, img, what = sys.argv[1], sys.argv[2], sys.argv[3]
out = subprocess.run([os.environ["KUP"], "show", img, "--json"], capture_output=True, check=True).stdout
doc = json.loads(out)
mm = next(v for k, v in doc.items() if k.startswith("mm-"))["entries"][0]
def runs(key):
    return [(int(r["vaddr"]), int(r["nr_pages"])) for r in mm.get(key, [])]
hot = runs("hot_runs")
hotpages = {v // 4096 + i for v, n in hot for i in range(n)}
allpages = {v // 4096 + i for v, n in runs("runs") for i in range(n)}
want = hotpages if what == "hot" else allpages - hotpages
fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
have, missing = 0, []
for p in sorted(want):
    e = struct.unpack("Q", os.pread(fd, 8, p * 8))[0]
    have += (e >> 63) & 1
    if not (e >> 63) & 1 and len(missing) < 4:
        missing.append(hex(p * 4096))
print(what, have, len(want))
if missing and os.environ.get("SHOW_MISSING"):
    maps = open(f"/proc/{pid}/maps").read().splitlines()
    for m in missing:
        a = int(m, 16)
        print("missing", m, next((l for l in maps if int(l.split("-")[0], 16) <= a < int(l.split()[0].split("-")[1], 16)), "unmapped"), file=sys.stderr)
PY
}

pid=$(start_bg "$T/out" "$PROGS/dirtier" 128 1 2000)
wait_for_line "$T/out" '^READY' 60 || bail "dirtier did not start"
check "kup dump --pre-dump=3 -D" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img" --pre-dump=3
check "the dumped process is gone" wait_gone "$pid"
note "$(grep -E 'pre-dump|read now' "$T/dump.log")"
read -r _ _ hot_total < <(present $$ "$T/img" hot)
read -r _ _ cold_total < <(present $$ "$T/img" cold)
check "the image has hot runs: the pages written after the last round ($hot_total of $((hot_total + cold_total)))" \
	eval '[ "${hot_total:-0}" -gt 0 ] && [ "$hot_total" -lt "$cold_total" ]'
check "kup show lists them" eval '"$KUP" show "$T/img" | grep -q hot_runs'

check "kup restore --lazy -d, the address-order pass held" \
	eval 'KUP_LAZY_HOLD_COLD=$T/cold kup_run "$T/restore.log" restore -D "$T/img" --lazy -d -v'
kill -STOP "$pid" 2> /dev/null
track "$pid"
lz=$(grep -oE 'pid [0-9]+ \(kup-lazy\)' "$T/restore.log" | awk '{ print $2 }')
[ -n "$lz" ] && track "$lz"
check "it runs, served by kup-lazy (pid $lz)" eval 'alive $pid && [ -n "$lz" ] && alive $lz'
check "every hot page comes while the process is stopped" \
	wait_for "[ \"\$(present $pid '$T/img' hot)\" = 'hot $hot_total $hot_total' ]" 60 ||
	note "$(SHOW_MISSING=1 present "$pid" "$T/img" hot 2>&1)"
# (the process writes on from where it was, after the hot pages: it does
# not fault them in itself before it wraps around, 16 s at this rate)
touch "$T/cold"
kill -CONT "$pid"
check "kup-lazy exits once the rest is in" wait_for "! alive $lz" 120
check "it says how many came first" \
	grep -Eq 'memory is complete: [0-9]+ pages filled \([1-9][0-9]* of them first' "$T/restore.log"
check "every page holds the generation its table says" request_check "$pid" "$T/out" 60
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
