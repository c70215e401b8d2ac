#!/bin/bash
# --json output (kup/json.c, jansson): valid JSON, UTF-8 kept as it is (a
# store at "/…/é dir/…" reads back the same path, not "Ã©"), a byte that is
# not UTF-8 comes out as U+FFFD, 64-bit integers are strings (as in
# protobuf's JSON mapping) and equal the text output's numbers.
# Then a golden test of every command's --json through jq: what it prints,
# with the values that change from run to run (times, pids) replaced by
# their type, against the expected text; a tree whose cwd is "/…/é dir"
# and whose rlimits are RLIM_INFINITY (18446744073709551615) among them.
. "$(dirname "$0")/../lib.sh"
require_root
command -v jq > /dev/null || skip_all "needs jq (tests/install-deps.sh)"
plan 33

d="$T/é dir"
mkdir -p "$d"
S="$d/store.ppp"
kup_run "$T/fmt.log" ppp format "$S" --size 64M || bail "kup ppp format: $(cat "$T/fmt.log")"
"$KUP" ppp status "$S" --json > "$T/status.json"
check "ppp status --json is valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/status.json"
check "the path reads back as it is, UTF-8 (é)" python3 -c '
import json, sys
p = json.load(open(sys.argv[1], encoding="utf-8"))["path"]
sys.exit(p != sys.argv[2])' "$T/status.json" "$S"
check "64-bit integers are strings: size, generation" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(not (o["size"] == str(64 << 20) and isinstance(o["generation"], str) and isinstance(o["blobs"], int)))' "$T/status.json"
check "... equal to the text output's" eval \
	"[ \"\$(\"\$KUP\" ppp status '$S' | sed -n 's/^generation: *//p')\" = \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"generation\"])' '$T/status.json')\" ]"

# a path that is not UTF-8 (byte 0xff in a directory's name)
bad=$(printf '%s/bad\xffdir' "$T")
mkdir -p "$bad"
kup_run "$T/fmt2.log" ppp format "$bad/s.ppp" --size 16M || bail "kup ppp format: $(cat "$T/fmt2.log")"
"$KUP" ppp status "$bad/s.ppp" --json > "$T/bad.json"
check "ppp status --json of a path that is not UTF-8 is valid UTF-8 JSON" \
	python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$T/bad.json"
check "... the bad byte is U+FFFD, the rest as it is" python3 -c '
import json, sys
p = json.load(open(sys.argv[1], encoding="utf-8"))["path"]
sys.exit(p != sys.argv[2] + "/bad\ufffddir/s.ppp")' "$T/bad.json" "$T"

"$KUP" recover --json > "$T/rec.json"
check "recover --json: {\"recovered\": [...]}" python3 -c '
import json, sys
sys.exit(not isinstance(json.load(open(sys.argv[1]))["recovered"], list))' "$T/rec.json"
"$KUP" kexec status --json > "$T/kx.json"
check "kexec status --json: supported and loaded, booleans" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(not (isinstance(o["supported"], bool) and isinstance(o["loaded"], bool)))' "$T/kx.json"

# ---- golden tests, through jq -------------------------------------------------------
# run_json OUT ERR ARGS...: kup ARGS, stdout into OUT, stderr into ERR
run_json() {
	local out=$1 err=$2
	shift 2
	kup_try "$@" > "$out" 2> "$err"
}
# golden WHAT FILE FILTER EXPECTED: jq -cS FILTER of FILE is EXPECTED
golden() {
	local got
	got=$(jq -cS "$3" "$2" 2>&1)
	check "$1" [ "$got" = "$4" ] || note "got:  $got" "want: $4"
}
# a u64 in a string, compared as a number (jq's are doubles, fine for ns today)
U64='(type == "string" and test("^[0-9]+$"))'

# kup check --json: a list of {check, status, message}; a store's path kept
"$KUP" check --json --ppp "$S" > "$T/check.json"
golden "check --json: the checks, each {check, status, message}" "$T/check.json" \
	'[.[] | [.check, (.status | test("^(ok|warn|fail)$")), (.message | type)]] | map(select(.[0] == "privileges" or .[0] == "store"))' \
	'[["privileges",true,"string"],["store",true,"string"]]'
golden "... the store's message names its path as it is (é)" "$T/check.json" \
	'[.[] | select(.check == "store") | .message | contains("'"$S"'")]' '[true]'

# kup dump --json of a tree whose cwd is "$d" (é), into "$d/img"
pid=$(cd "$d" && start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || bail "counter did not start"
check "kup dump --json" run_json "$T/dump.json" "$T/dump.err" dump -t "$pid" -D "$d/img" --json ||
	note "$(cat "$T/dump.err")"
check "... one JSON object on stdout, the messages on stderr" \
	eval '[ "$(jq -s length "$T/dump.json")" = 1 ] && grep -q "kup dump: dumped 1 processes" "$T/dump.err"'
golden "... golden" "$T/dump.json" '.trees[0].pid -= '"$pid"' |
	.frozen_at_ns |= '"$U64"' | .frozen_ns |= '"$U64"' | .total_ns |= '"$U64"' | .frozen_at |= type |
	.pages |= '"$U64"' | .bytes |= '"$U64"'' \
	'{"bytes":true,"frozen_at":"string","frozen_at_ns":true,"frozen_ns":true,"left_running":false,"pages":true,"processes":1,"store":{"kind":"dir","path":"'"$d"'/img"},"threads":1,"total_ns":true,"trees":[{"pid":0,"unit":null}]}'
check "... bytes = pages x the page size" \
	jq -e '(.bytes | tonumber) == (.pages | tonumber) * '"$(getconf PAGESIZE)" "$T/dump.json"
golden "kup show --json: the cwd \"$d\", UTF-8 as it is" <("$KUP" show "$d/img" --json) \
	'[.["files.img"].entries[].files[] | select(.kind == "FILE_DIR" and .path != "/") | .path]' '["'"$d"'"]'
"$KUP" show "$d/img" --json > "$T/show.json"
golden "kup show --json: RLIM_INFINITY is \"18446744073709551615\", not 18446744073709552000" \
	"$T/show.json" '[.["core-'"$pid"'.img"] | .. | objects | select(has("rlimits")) | .rlimits[0] |
		{resource, max}]' '[{"max":"18446744073709551615","resource":0}]'

# kup restore --json
check "kup restore -d --json" run_json "$T/restore.json" "$T/restore.err" restore -D "$d/img" -d --json ||
	note "$(cat "$T/restore.err")"
track "$pid"
golden "... golden" "$T/restore.json" '.trees[0] |= (.root_pid -= '"$pid"' |
	.frozen_at_ns |= '"$U64"' | .running_at_ns |= '"$U64"' | .outage_ns |= '"$U64"' |
	.total_ns |= '"$U64"' | .frozen_at |= type | .running_at |= type | .pages |= '"$U64"' |
	.bytes |= '"$U64"')' \
	'{"store":{"kind":"dir","path":"'"$d"'/img"},"trees":[{"bytes":true,"frozen_at":"string","frozen_at_ns":true,"name":"pid-'"$pid"'","other_boot":false,"outage_ns":true,"pages":true,"processes":1,"root_pid":0,"running_at":"string","running_at_ns":true,"threads":1,"total_ns":true}]}'
# (jq's numbers are doubles: the arithmetic of ns in bash's 64 bits)
ra=$(jq -r '.trees[0].running_at_ns' "$T/restore.json")
fa=$(jq -r '.trees[0].frozen_at_ns' "$T/restore.json")
og=$(jq -r '.trees[0].outage_ns' "$T/restore.json")
check "... the outage is the time from the freeze to the run, the freeze the dump's" \
	eval '[ $((ra - fa)) = "$og" ] && [ "$fa" = "$(jq -r .frozen_at_ns "$T/dump.json")" ]'
check "... and the counter goes on" wait_for_line "$T/out" "^C $(( $(line_field "$T/out" '^C ' 2) + 3 )) " 10

# the same tree into the store, kup ppp ls --json, the PID holder's --status --json
kill_tree "$pid"
wait_gone "$pid"
pid=$(cd "$d" && start_bg "$T/out2" "$PROGS/counter")
wait_for_line "$T/out2" '^C 3 ' || bail "counter did not start"
check "kup dump --ppp --json" run_json "$T/pdump.json" "$T/pdump.err" dump -t "$pid" --ppp "$S" --json ||
	note "$(cat "$T/pdump.err")"
golden "... the store, its path as it is (é)" "$T/pdump.json" '.store' '{"kind":"ppp","path":"'"$S"'"}'
golden "kup ppp ls --json: {name, size, offset, extents}, u64 as strings" <("$KUP" ppp ls "$S" --json) \
	'[.[] | select(.name == "pstree.img") | map_values(type)]' \
	'[{"extents":"string","name":"string","offset":"string","size":"string"}]'
if "$KUP" hold --status > /dev/null 2>&1; then
	ok "# SKIP another PID holder runs" && ok "# SKIP" && ok "# SKIP"
else
	"$KUP" hold --status --json > "$T/nohold.json"
	golden "kup hold --status --json, no holder" "$T/nohold.json" '.' '{"running":false}'
	check "kup hold --ppp STORE: holds the tree's pid" kup_run "$T/hold.log" hold --ppp "$S" --log "$T/holder.log"
	"$KUP" hold --status --json > "$T/hold.json"
	golden "kup hold --status --json" "$T/hold.json" '.' \
		'{"held":1,"pids":['"$pid"'],"running":true,"taken":[],"total":1,"truncated":false}'
	"$KUP" hold --release > /dev/null 2>&1
fi
check "kup restore --ppp -d --json" run_json "$T/prestore.json" "$T/prestore.err" restore --ppp "$S" -d --json ||
	note "$(cat "$T/prestore.err")"
track "$pid"
golden "... golden" "$T/prestore.json" '{store, pid: .trees[0].root_pid, n: (.trees | length)}' \
	'{"n":1,"pid":'"$pid"',"store":{"kind":"ppp","path":"'"$S"'"}}'
golden "kup restore --ppp --if-any --json, nothing left: no trees" <("$KUP" restore --ppp "$S" -d --if-any --json) \
	'.trees' '[]'
kill_tree "$pid"

# kup ppp status --json, whole, values that vary by type
golden "kup ppp status --json: golden" "$T/status.json" 'map_values(type)' \
	'{"backend":"string","blob_bytes":"string","blobs":"number","checkpoint":"boolean","checksum":"string","commit_time_ns":"string","committed":"null","data_mark":"string","data_size":"string","extent_size":"number","formatted":"string","generation":"string","hugetlbfs":"boolean","path":"string","size":"string","superblocks_valid":"number","used":"string","uuid":"string","valid":"boolean","version":"number"}'

# kup status --json: u64 maxima (the record is ASCII: see kup-status(8))
export KUP_LAST_SWITCH=$T/last-switch
cat > "$KUP_LAST_SWITCH" <<R
kup-switch 1
begun 18446744073709551615 2c8a3c5e-0000-4000-8000-000000000001 6.1.0-47-amd64 /boot/vmlinuz-6.1.0-56-amd64
pre-dump 1765064990000000000 18446744073709551615
hold 18446744073709551615 2000000000
restored demo.service 1765065000123000000 1765065042323000000
memory-complete demo.service 18446744073709551615
R
golden "kup status --json: golden (18446744073709551615 exact)" <("$KUP" status --json) '.' \
	'{"last_switch":{"begun_ns":"18446744073709551615","from":"6.1.0-47-amd64","hold_ns":"18446744073709551615","hold_since_boot_ns":"2000000000","kernel":"/boot/vmlinuz-6.1.0-56-amd64","pre_dump_begun_ns":"1765064990000000000","pre_dump_done_ns":"18446744073709551615","rolled_back":false,"services":[{"freeze_ns":"1765065000123000000","memory_complete_ns":"18446744073709551615","name":"demo.service","outage_ms":42200,"running_ns":"1765065042323000000","state":"restored"}]}}'
unset KUP_LAST_SWITCH
golden "kup recover --json: golden" "$T/rec.json" '.' '{"recovered":[]}'
golden "kup kexec status --json: golden" "$T/kx.json" 'map_values(type)' '{"loaded":"boolean","supported":"boolean"}'
