#!/bin/bash
# kup show as an admin's decoder: a tree with a TCP listener and a unix
# socketpair, dumped into a store; kup show reads
# the store directly and gives the same as from a directory of its images;
# --json is protobuf's JSON mapping (64-bit integers as strings) with the
# sockets and registers decoded into named fields, never "<N bytes>";
# --ps, --fds and --mappings match what /proc showed before the dump.
. "$(dirname "$0")/../lib.sh"
require_root

# a port of its own on loopback (only listened on: nothing connects to it)
port=$((20000 + $$ % 20000))
root=$(start_bg "$T/root" sh -c "
	$PROGS/tcppeer listen 127.0.0.1 $port > $T/ls 2>&1 &
	$PROGS/unixpair -t stream -n 5 > $T/up 2>&1 &
	wait")
wait_for_line "$T/ls" '^LISTEN' || bail "the listener did not start"
wait_for_line "$T/up" '^QUEUED child ' || bail "unixpair did not start"
wait_for_line "$T/up" '^QUEUED parent ' || bail "unixpair did not start"

# what /proc says before the dump: "pid ppid" lines, "pid fd" lines
tree=$(tree_pids "$root")
for p in $tree; do
	echo "$p $(awk '{ print $4 }' /proc/$p/stat)"
done | sort > "$T/ps.proc"
for p in $tree; do
	for fd in $(ls /proc/$p/fd); do echo "$p $fd"; done
done | sort > "$T/fds.proc"
note "tree: $tree"

S=$T/store.ppp
kup_run "$T/fmt.log" ppp format "$S" --size 64M || bail "kup ppp format: $(cat "$T/fmt.log")"
check "kup dump --ppp of the tree" kup_run "$T/dump.log" dump -t "$root" --ppp "$S" ||
	note "$(tail -n 20 "$T/dump.log")"
for p in $tree; do wait_gone "$p"; done

# the same checkpoint as a directory: every blob of the store, as kup ppp gets it
mkdir "$T/img"
for b in $("$KUP" ppp ls "$S" --json | python3 -c '
import json, sys
print(" ".join(b["name"] for b in json.load(sys.stdin)))'); do
	"$KUP" ppp get -s "$S" "$b" -o "$T/img/$b" || bail "kup ppp get $b"
done

check "kup show --ppp STORE --json" kup_run "$T/store.json" show --ppp "$S" --json
check "kup show DIR --json" eval "\"$KUP\" show \"$T/img\" --json > \"$T/dir.json\""
check "... the same JSON from the store as from the directory" cmp "$T/store.json" "$T/dir.json"
check "kup show STORE --json (a store file named without --ppp): the same" \
	eval "\"$KUP\" show \"$S\" --json | cmp - \"$T/store.json\""
check "kup show --ppp STORE (text)" eval "\"$KUP\" show --ppp \"$S\" > \"$T/store.txt\""
check "kup show DIR (text)" eval "\"$KUP\" show \"$T/img\" > \"$T/dir.txt\""
check "... the same text from the store as from the directory" cmp "$T/store.txt" "$T/dir.txt"
check "no <N bytes> and nothing undecoded in the text" \
	eval "! grep -nE '<[0-9]+ bytes>|undecoded' \"$T/dir.txt\""
check "registers by name in the text (rip: 0x...)" grep -qE '^ +rip: 0x[0-9a-f]+$' "$T/dir.txt"
check "socket states by name in the text" grep -q 'state: TCP_LISTEN' "$T/dir.txt"
check "kup show --ppp STORE pstree.img: one image" \
	eval "\"$KUP\" show --ppp \"$S\" pstree.img --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(list(d) != [\"pstree.img\"])'"
check_fails "kup show --ppp STORE nosuch.img fails" "$KUP" show --ppp "$S" nosuch.img

check "the JSON: 64-bit integers are strings, registers and sockets are named fields" \
	python3 - "$T/dir.json" "$root" "$port" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
root = int(sys.argv[2])
port = int(sys.argv[3])
def fail(why):
    print("# " + why)
    sys.exit(1)
inv = d["inventory.img"]["entries"][0]
if not isinstance(inv["dump_time_ns"], str) or not inv["dump_time_ns"].isdigit():
    fail("dump_time_ns is not a string of digits: %r" % inv["dump_time_ns"])
if not isinstance(inv["root_pid"], int):
    fail("root_pid (32-bit) is not a number")
th = d["core-%d.img" % root]["entries"][0]["threads"][0]
for r in ("rip", "rsp", "rax", "orig_rax"):
    if not isinstance(th["gpregs"].get(r), str) or not th["gpregs"][r].isdigit():
        fail("gpregs.%s missing or not a 64-bit string: %r" % (r, th["gpregs"].get(r)))
if int(th["gpregs"]["rsp"]) == 0:
    fail("rsp is 0")
fp = th.get("xstate") or th.get("fpregs")
if not fp or not isinstance(fp.get("size"), str) or int(fp["size"]) < 512:
    fail("no decoded FPU state: %r" % fp)
files = d["files.img"]["entries"][0]["files"]
inet = [f["sk"] for f in files if f["kind"] == "FILE_INET_SK"]
unix = [f["sk"] for f in files if f["kind"] == "FILE_UNIX_SK"]
lis = [s for s in inet if s["family"] == 2 and s["type"] == 1 and s["state"] == 10 and
       s.get("src_addr") == "127.0.0.1" and s.get("src_port") == port]
if not lis:
    fail("no decoded listener on 127.0.0.1:%d in %r" % (port, inet))
if not isinstance(lis[0]["ino"], str) or not isinstance(lis[0]["netns"], str):
    fail("ino, netns (64-bit) are not strings")
if not any(s["type"] == 1 and s["state"] == 1 and s.get("peer_ino") for s in unix):
    fail("no decoded connected unix stream socket in %r" % unix)
def walk(x, path):
    if isinstance(x, dict):
        if "undecoded" in x:
            fail("undecoded at %s: %r" % (path, x))
        for k, v in x.items():
            walk(v, path + "." + k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            walk(v, "%s[%d]" % (path, i))
    elif isinstance(x, str) and x.startswith("<") and x.endswith("bytes>"):
        fail("%s: %s" % (path, x))
walk(d, "")
EOF

check "kup show --ps --json: the tree's pids with their ppids" eval "
	\"$KUP\" show --ppp \"$S\" --ps --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
root = $root
for r in rows:
    print(r[\"pid\"], 0 if r[\"pid\"] == root else r[\"ppid\"])' | sort > \"$T/ps.show\""
# the root's parent is outside the tree: the image says 0
sed -i "s/^$root .*/$root 0/" "$T/ps.proc"
check "... as /proc had them" diff "$T/ps.proc" "$T/ps.show"
check "... and comm in the text" eval "\"$KUP\" show \"$T/img\" --ps | grep -qE '^$root +0 .* sh '"

check "kup show --fds --json: every fd of every process, as /proc had them" eval "
	\"$KUP\" show \"$T/img\" --fds --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r[\"pid\"], r[\"fd\"])' | sort > \"$T/fds.show\" && diff \"$T/fds.proc\" \"$T/fds.show\""
check "kup show --fds: the listener's address" \
	eval "\"$KUP\" show \"$T/img\" --fds | grep -q 'INET_SK .*tcp 127.0.0.1:$port LISTEN'"
check "kup show --fds: the unix pair" \
	eval "\"$KUP\" show \"$T/img\" --fds | grep -qE 'UNIX_SK .*unix stream ESTABLISHED'"
first=$(awk '{ print $1 }' "$T/fds.proc" | sort -n | tail -n 1)
check "kup show --fds PID: only that process's fds" eval "
	\"$KUP\" show \"$T/img\" --fds $first --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
sys.exit(not rows or any(r[\"pid\"] != $first for r in rows))'"

check "kup show --mappings PID --json: ranges, the stack, pages dumped" eval "
	\"$KUP\" show --ppp \"$S\" --mappings $root --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
ok = rows and all(r[\"pid\"] == $root and int(r[\"start\"], 16) < int(r[\"end\"], 16) for r in rows)
ok = ok and any(r[\"file\"] == \"[stack]\" and int(r[\"pages\"]) > 0 for r in rows)
sys.exit(not ok)'"
check "kup show --mappings (text) names the kinds" \
	eval "\"$KUP\" show \"$T/img\" --mappings $root | grep -qE ' rw-p .*ANON_PRIVATE +\\[stack\\] +[1-9]'"
check_fails "kup show IMAGE --ps is refused (a checkpoint is needed)" \
	"$KUP" show "$T/img/pstree.img" --ps
check_fails "kup show --fds PID of no process of the checkpoint fails" \
	"$KUP" show "$T/img" --fds 4194304

# processes sharing one fd table (CLONE_FILES): each is listed with the
# table's fds, as /proc shows them
: > "$T/first"
: > "$T/second"
pid=$(start_bg "$T/fdshare.out" "$PROGS/fdshare" -f "$T/first" -g "$T/second")
wait_for_line "$T/fdshare.out" '^READY' || bail "fdshare did not start: $(tail -n 2 "$T/fdshare.out")"
tree=$(tree_pids "$pid")
for p in $tree; do
	for fd in $(ls /proc/$p/fd); do echo "$p $fd"; done
done | sort > "$T/share.proc"
check "kup dump of a tree sharing an fd table" kup_run "$T/dump2.log" dump -t "$pid" -D "$T/share" ||
	note "$(tail -n 20 "$T/dump2.log")"
check "kup show --fds: the shared table's fds for each process that shares it" eval "
	\"$KUP\" show \"$T/share\" --fds --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r[\"pid\"], r[\"fd\"])' | sort > \"$T/share.show\" && diff \"$T/share.proc\" \"$T/share.show\""

# ---- a store of several trees (blobs pN/NAME): the summaries of each part
S2=$T/two.ppp
check "kup ppp format" kup_run "$T/fmt2.log" ppp format "$S2" --size 64M
a=$(start_bg "$T/a.out" "$PROGS/counter")
b=$(start_bg "$T/b.out" "$PROGS/counter")
wait_for_line "$T/a.out" '^C 2 ' && wait_for_line "$T/b.out" '^C 2 ' || bail "counters did not start"
check "kup dump of two trees into one store" \
	eval '"$KUP" dump -t "$a" -t "$b" --ppp "$S2" --json > "$T/two.json" 2> "$T/dump3.log"' ||
	note "$(tail -n 20 "$T/dump3.log")"
check "... its --json names both trees, and their processes" \
	eval '[ "$(jq -c "[[.trees[].pid], .processes, .store.kind]" "$T/two.json")" = "[[$a,$b],2,\"ppp\"]" ]'
check "kup show --ppp --ps of a store of two trees: each tree, led by its part" \
	eval '[ "$("$KUP" show --ppp "$S2" --ps --json | jq -c "[.[] | [.part, .pid, .comm]]")" = \
		"[[\"p1\",$a,\"counter\"],[\"p2\",$b,\"counter\"]]" ]'
check "... as a table" eval '"$KUP" show "$S2" --ps | grep -qE "^PART +PID" &&
	"$KUP" show "$S2" --ps | grep -qE "^p2 +$b +0 "'
check "kup show --fds PID: the fds of that pid, in its part" \
	eval '[ "$("$KUP" show --ppp "$S2" --fds "$b" --json | jq -c "[.[] | [.part, .pid, .fd]]")" = \
		"[[\"p2\",$b,0],[\"p2\",$b,1],[\"p2\",$b,2]]" ]'
check "kup show --mappings PID of a pid in neither part fails, naming it" \
	eval '! "$KUP" show --ppp "$S2" --mappings 1 > /dev/null 2> "$T/e" &&
	      grep -q "pid 1 is not a process of the checkpoint" "$T/e"'
