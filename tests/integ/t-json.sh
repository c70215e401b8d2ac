#!/bin/bash
# --json output (kup/json.c, jansson): valid JSON, UTF-8 kept as it is (a
# store at "/…/é dir/…" reads back the same path, not "Ã©"), a byte that is
# not UTF-8 comes out as U+FFFD, 64-bit integers are strings (as in
# protobuf's JSON mapping) and equal the text output's numbers.
. "$(dirname "$0")/../lib.sh"
require_root
plan 8

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
