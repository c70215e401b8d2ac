#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kup ppp on a file store: format, status, put/get, verify, corruption
# detection, scrub, usage errors.  Prints "ok N - text" / "not ok N - text";
# exits non-zero if a check failed.
#
#   KUP=build/kup tests/integ/t-ppp-cli.sh
set -u

KUP=${KUP:-build/kup}
if [ ! -x "$KUP" ]; then
	echo "not ok 1 - kup binary $KUP not found (set KUP)"
	exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/t-ppp-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
S=$T/store.ppp

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
# check TEXT CMD...: passes if CMD exits 0
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }
# run CMD..., keeping stdout/stderr/status in $T/out, $T/err, $rc
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
has() { grep -q -- "$1" "$2"; }

# flip_byte FILE OFFSET
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $(( (b ^ 0x5a) & 255 )))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ---- format, status ------------------------------------------------------
run "$KUP" ppp format "$S"
check "format without --size on a new file is a usage error (2)" [ $rc = 2 ]
check "... and says --size is needed" has "size" "$T/err"

run "$KUP" ppp format "$S" --size 16M --extent-size 1M
check "format a 16 MiB file store" [ $rc = 0 ]
check "format reports the size" has "16777216 bytes" "$T/out"
check "the store file is 16 MiB, mode 0600" \
	[ "$(stat -c %s:%a "$S")" = "16777216:600" ]

run "$KUP" ppp status "$S"
check "status of an empty store" [ $rc = 0 ]
check "status shows generation 1, no checkpoint" \
	eval 'has "generation:   1" "$T/out" && has "checkpoint:   none" "$T/out"'

run "$KUP" ppp status "$S" --json
check "status --json" [ $rc = 0 ]
check "status --json has size, generation, blobs" \
	eval 'has "\"size\": \"16777216\"" "$T/out" && has "\"generation\": \"1\"" "$T/out" && has "\"blobs\": 0" "$T/out"'
if command -v python3 >/dev/null; then
	check "status --json is valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out"
fi

run "$KUP" ppp verify "$S"
check "verify of an empty store succeeds" [ $rc = 0 ]

# ---- put, ls, get --------------------------------------------------------
head -c 3000000 /dev/urandom >"$T/pages.bin"
echo "small image" >"$T/small.txt"
run "$KUP" ppp put -s "$S" "$T/pages.bin" pages-1.img
check "put a 3 MB blob" [ $rc = 0 ]
run "$KUP" ppp put -s "$S" - pstree.img <"$T/small.txt"
check "put a blob from stdin" [ $rc = 0 ]

run "$KUP" ppp ls "$S"
check "ls lists both blobs" eval 'has pages-1.img "$T/out" && has pstree.img "$T/out"'
run "$KUP" ppp ls "$S" --json
off=$(sed -n 's/.*"name": "pages-1.img", "size": "3000000", "offset": "\([0-9]*\)".*/\1/p' "$T/out")
check "ls --json gives the blob offset" [ -n "$off" ]

run "$KUP" ppp get -s "$S" pages-1.img -o "$T/pages.out"
check "get the big blob back" eval '[ $rc = 0 ] && cmp -s "$T/pages.bin" "$T/pages.out"'
run "$KUP" ppp get -s "$S" pstree.img
check "get a blob to stdout" eval '[ $rc = 0 ] && cmp -s "$T/small.txt" "$T/out"'
run "$KUP" ppp get -s "$S" nope.img
check "get of a missing blob fails (1) naming it" eval '[ $rc = 1 ] && has nope.img "$T/err"'

run "$KUP" ppp status "$S"
check "status shows generation 3, 2 blobs" \
	eval 'has "generation:   3" "$T/out" && has "2 blobs" "$T/out"'

run "$KUP" ppp verify "$S"
check "verify succeeds" [ $rc = 0 ]
check "verify says ok" has ": ok" "$T/out"

# ---- corruption ----------------------------------------------------------
flip_byte "$S" $((off + 1048576 + 12345))
run "$KUP" ppp verify "$S"
check "verify of a corrupted blob fails (1)" [ $rc = 1 ]
check "verify names the blob and the extent" has "blob 'pages-1.img' extent 1/3" "$T/err"
check "verify names the store" has "$S" "$T/err"
run "$KUP" ppp get -s "$S" pages-1.img -o "$T/pages.out"
check "get of the corrupted blob fails (1)" eval '[ $rc = 1 ] && has "extent 1/3" "$T/err"'
run "$KUP" ppp get -s "$S" pstree.img
check "get of an intact blob still works" eval '[ $rc = 0 ] && cmp -s "$T/small.txt" "$T/out"'
flip_byte "$S" $((off + 1048576 + 12345))
run "$KUP" ppp verify "$S"
check "verify succeeds once the byte is restored" [ $rc = 0 ]

cp "$S" "$T/bad.ppp"
flip_byte "$T/bad.ppp" 100
flip_byte "$T/bad.ppp" $((4096 + 100))
run "$KUP" ppp status "$T/bad.ppp"
check "status of a store with both superblocks bad fails (1)" [ $rc = 1 ]
check "... naming the file and the problem" \
	eval 'has "$T/bad.ppp" "$T/err" && has "checksum mismatch" "$T/err"'
run "$KUP" ppp verify "$T/bad.ppp"
check "verify of it fails (1)" [ $rc = 1 ]

cp "$S" "$T/torn.ppp"
flip_byte "$T/torn.ppp" 100
run "$KUP" ppp verify "$T/torn.ppp"
check "one torn superblock copy: verify still succeeds, with a warning" \
	eval '[ $rc = 0 ] && has "superblock copy 0" "$T/err"'

run "$KUP" ppp status "$T/nonexistent.ppp"
check "status of a missing file fails (1) naming it" \
	eval '[ $rc = 1 ] && has "$T/nonexistent.ppp" "$T/err"'
head -c 100000 /dev/urandom >"$T/junk"
run "$KUP" ppp verify "$T/junk"
check "verify of a file that is not a store fails (1)" \
	eval '[ $rc = 1 ] && has "not a kup page store" "$T/err"'
run "$KUP" ppp format "$T/junk" --size 1M
check "format refuses a file holding other data (1)" [ $rc = 1 ]
run "$KUP" ppp format "$T/junk" --size 1M --force
check "format --force overwrites it" [ $rc = 0 ]

# ---- rm, scrub -----------------------------------------------------------
run "$KUP" ppp rm -s "$S" pstree.img
check "rm a blob" eval '[ $rc = 0 ] && ! "$KUP" ppp ls "$S" | grep -q pstree.img'

run "$KUP" ppp scrub "$S"
check "scrub" [ $rc = 0 ]
run "$KUP" ppp status "$S"
check "after scrub: no checkpoint" has "checkpoint:   none" "$T/out"
run "$KUP" ppp ls "$S"
check "after scrub: ls shows no checkpoint" has "no checkpoint" "$T/out"
check "after scrub: the data area is all zero" \
	cmp -s <(tail -c +8193 "$S") <(head -c $((16777216 - 8192)) /dev/zero)
run "$KUP" ppp verify "$S"
check "after scrub: verify succeeds" [ $rc = 0 ]

# ---- usage ---------------------------------------------------------------
run "$KUP" ppp
check "kup ppp without a command: usage (2)" [ $rc = 2 ]
run "$KUP" ppp frobnicate
check "unknown ppp command: usage (2)" [ $rc = 2 ]
run "$KUP" ppp status "$S" extra
check "extra argument: usage (2)" [ $rc = 2 ]
run "$KUP" ppp verify --bogus
check "unknown option: usage (2)" [ $rc = 2 ]
run "$KUP" ppp format "$S" --size 12XB
check "bad size: usage (2)" [ $rc = 2 ]
for c in format status verify scrub ls put get rm; do
	run "$KUP" ppp $c --help
	check "kup ppp $c --help" eval '[ $rc = 0 ] && has "Usage: kup ppp $c" "$T/out"'
done
run "$KUP" ppp --help
check "kup ppp --help" eval '[ $rc = 0 ] && has "Usage: kup ppp" "$T/out"'

echo "1..$n"
[ $failed = 0 ]
