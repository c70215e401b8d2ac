#!/bin/bash
# kup show decodes every image (text and JSON); a restore that routes the old
# vDSO entry points to the running kernel's vDSO keeps clocks working.
. "$(dirname "$0")/../lib.sh"

pid=$(start_bg "$T/out" "$PROGS/counter")
wait_for_line "$T/out" '^C 3 ' || exit 1
"$KUP" dump -t "$pid" -D "$T/img" || exit 1
wait_gone "$pid"
"$KUP" show "$T/img" > "$T/show"; rc=$?
check "kup show prints the images" [ $rc -eq 0 ]
check "... with the pid" grep -q "pid: $pid" "$T/show"
"$KUP" show "$T/img" --json > "$T/json"
python3 -m json.tool "$T/json" > /dev/null; rc=$?
check "kup show --json is valid JSON" [ $rc -eq 0 ]
check "... and holds the pid" python3 -c "import json,sys; d=json.load(open('$T/json')); sys.exit(0 if d['pstree.img']['entries'][0]['entries'][0]['pid'] == $pid else 1)"
"$KUP" show "$T/img/pages-$pid.img" > /dev/null 2>&1; rc=$?
check "kup show refuses a raw page image" [ $rc -ne 0 ]

check "restore with the vDSO proxy" "$KUP" restore -D "$T/img" -d --force-vdso-proxy
track "$pid"
last=$(tail -n 1 "$T/out" | awk '{print $2}')
wait_for_line "$T/out" "^C $((last + 10)) " 10
check "clock_gettime through the old vDSO entry points: time moves forward at the right pace" \
	awk '$1 == "C" { if (t && ($4 < t || $4 - t > 5000)) { print "# bad step " t " -> " $4; exit 1 } t = $4 }' "$T/out"
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
