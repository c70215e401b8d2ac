#!/bin/bash
# The checksums of a page image's pieces (docs/image-format.md): a dump
# writes XXH3 (mm_image.pages_sum_kind 1); an image of the kind older kups
# wrote (XXH64, no pages_sum_kind: KUP_TEST_PSUM=xxh64 makes one) restores
# as well, from a directory and from a store file, and a byte damaged in its
# pages is found by its own checksums; an image whose kind is changed (its
# sums then not its kind's) or unknown is refused before anything runs,
# naming the image.
. "$(dirname "$0")/../lib.sh"
require_root
plan 29
edit() { python3 "$(dirname "$0")/../imgedit.py" "$@"; }
S=$T/store.ppp

# run_bigmem NAME: a 64 MiB bigmem, its pid; its sum in $T/NAME.sum
run_bigmem() {
	local p
	p=$(start_bg "$T/$1.out" "$PROGS/bigmem" 64)
	wait_for_line "$T/$1.out" '^READY' 60 || return 1
	awk '/^SUM/ { print $2; exit }' "$T/$1.out" > "$T/$1.sum"
	echo "$p"
}
# same_memory NAME PID: every word as written, the sum from before
same_memory() {
	request_check "$2" "$T/$1.out" 60 > /dev/null &&
		grep -q "^CHECK [0-9]* OK sum=$(cat "$T/$1.sum") holes=zero" "$T/$1.out"
}
# old_dump LOG ARGS...: kup dump writing XXH64 pieces, as older kups did
old_dump() { local log=$1; shift; KUP_TEST_PSUM=xxh64 kup_run "$log" dump "$@"; }
kind_of() { "$KUP" show "$1" 2>/dev/null | awk '/pages_sum_kind/ { print $2; exit }'; }

# 1. what a dump writes: XXH3
pid=$(run_bigmem a) || bail "bigmem did not start"
dump_and_restore "$pid" "$T/a" || exit 1
check "a dump's pieces are XXH3 (pages_sum_kind 1)" [ "$(kind_of "$T/a/mm-$pid.img")" = 1 ]
check "its memory is back" same_memory a "$pid"
kill -9 "$pid"; wait_gone "$pid"

# 2. an older kind: XXH64, no pages_sum_kind, from a directory
pid=$(run_bigmem b) || bail "bigmem did not start"
check "kup dump (pieces XXH64, as older kups wrote)" old_dump "$T/b-dump.log" -t "$pid" -D "$T/b"
wait_gone "$pid"
check "its image has no pages_sum_kind" [ -z "$(kind_of "$T/b/mm-$pid.img")" ]
cp -a "$T/b" "$T/b2"
flip_byte "$T/b2/pages-$pid.img" $((5 << 20))
check_fails "a byte damaged at 5 MiB of the XXH64 image is refused" \
	kup_try restore -D "$T/b2" -d
check "... naming the piece" grep -q "pages-$pid.img: the piece at offset 5242880" "$T/err"
check "... and nothing of it runs" eval '! alive '"$pid"
check "the XXH64 image restores" kup_run "$T/b-rst.log" restore -D "$T/b" -d
track "$pid"
check "its memory is back" same_memory b "$pid"

# 3. the same into a store file (XXH3 extents: the pieces' XXH64 not taken)
check "kup ppp format (default checksum)" kup_run "$T/fmt.log" ppp format "$S" --size 160M
check "the store's extents are XXH3" eval '"$KUP" ppp status "$S" | grep -q xxh3'
check "kup dump --ppp (pieces XXH64)" old_dump "$T/c-dump.log" -t "$pid" --ppp "$S"
wait_gone "$pid"
check "kup ppp verify passes (the store summed the extents itself)" \
	kup_run "$T/c-verify.log" ppp verify "$S"
check "kup restore --ppp" kup_run "$T/c-rst.log" restore --ppp "$S" -d
check "its memory is back" same_memory b "$pid"

# 4. XXH3 into the store: the pieces' sums are the extents'
check "kup dump --ppp (pieces XXH3)" kup_run "$T/d-dump.log" dump -t "$pid" --ppp "$S"
wait_gone "$pid"
check "kup ppp verify passes" kup_run "$T/d-verify.log" ppp verify "$S"
check "kup restore --ppp" kup_run "$T/d-rst.log" restore --ppp "$S" -d
check "its memory is back" same_memory b "$pid"

# 5. a kind that lies: refused before anything runs
check "kup dump" kup_run "$T/e-dump.log" dump -t "$pid" -D "$T/e"
wait_gone "$pid"
cp -a "$T/e" "$T/e2"
edit "$T/e/mm-$pid.img" 681=0
check_fails "XXH3 sums called XXH64 are refused" kup_try restore -D "$T/e" -d
check "... naming mm-$pid.img" grep -q "mm-$pid.img: .* not those of its page image" "$T/err"
edit "$T/e2/mm-$pid.img" 681=7
check_fails "an unknown kind is refused" kup_try restore -D "$T/e2" -d
check "... naming it" grep -q "mm-$pid.img: checksum kind 7 of its page image is not known" \
	"$T/err"
check "nothing of the tree runs" eval '! alive '"$pid"
