#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kup ppp on a block device: the code path of /dev/pmem0, exercised here on a
# loop device (or on $PPP_TEST_DEVICE, e.g. /dev/pmem0 in the lab: its
# content is destroyed).  Also: a writer killed with SIGKILL in the middle
# of a transaction leaves the previous checkpoint intact.
#
#   KUP=build/kup [PPP_TEST_DEVICE=/dev/pmem0] tests/integ/t-ppp-blockdev.sh
set -u

KUP=${KUP:-build/kup}
T=$(mktemp -d "${TMPDIR:-/tmp}/t-ppp-blockdev.XXXXXX")
LOOP=
cleanup() {
	[ -n "${writer:-}" ] && kill -9 "$writer" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	rm -rf "$T"
}
trap cleanup EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
has() { grep -q -- "$1" "$2"; }
skip() { echo "# SKIP $*"; echo "1..0"; exit 0; }

if [ -n "${PPP_TEST_DEVICE:-}" ]; then
	DEV=$PPP_TEST_DEVICE
	FORCE=--force
else
	[ "$(id -u)" = 0 ] || skip "needs root for a loop device"
	command -v losetup >/dev/null || skip "no losetup"
	truncate -s 64M "$T/backing" || skip "no space for the backing file"
	LOOP=$(losetup -f --show "$T/backing" 2>/dev/null) || skip "cannot set up a loop device"
	DEV=$LOOP
	FORCE=
fi
[ -b "$DEV" ] || { echo "not ok 1 - $DEV is not a block device"; exit 1; }

run "$KUP" ppp format "$DEV" $FORCE
check "format $DEV (whole device)" [ $rc = 0 ]
size=$(blockdev --getsize64 "$DEV")
run "$KUP" ppp status "$DEV" --json
check "status: block device, size of the device" \
	eval 'has "\"backend\": \"block device\"" "$T/out" && has "\"size\": \"$((size / 4096 * 4096))\"" "$T/out"'

# the store is found without naming it (only if no other device comes first)
if [ -z "$LOOP" ] || ! ls /dev/pmem* >/dev/null 2>&1; then
	run "$KUP" ppp status
	check "status without a path finds $DEV" eval '[ $rc = 0 ] && has "$DEV" "$T/out"'
fi

head -c $((8 << 20)) /dev/urandom >"$T/pages.bin"
run "$KUP" ppp put -s "$DEV" "$T/pages.bin" pages-1.img
check "put an 8 MiB blob" [ $rc = 0 ]
run "$KUP" ppp get -s "$DEV" pages-1.img -o "$T/back.bin"
check "get it back" eval '[ $rc = 0 ] && cmp -s "$T/pages.bin" "$T/back.bin"'
run "$KUP" ppp verify "$DEV"
check "verify" [ $rc = 0 ]

# a writer killed in the middle: stdin never ends, so it is still writing
mkfifo "$T/fifo"
"$KUP" ppp put -s "$DEV" - half.img <"$T/fifo" 2>"$T/writer.err" &
writer=$!
exec 3>"$T/fifo"
head -c $((2 << 20)) /dev/urandom >&3
sleep 0.5
check "the writer is still running (blocked on its input)" kill -9 "$writer"
wait "$writer" 2>/dev/null
writer=
exec 3>&-
run "$KUP" ppp verify "$DEV"
check "after kill -9 of a writer: verify succeeds" [ $rc = 0 ]
run "$KUP" ppp ls "$DEV"
check "... the previous checkpoint is intact, the new blob absent" \
	eval 'has pages-1.img "$T/out" && ! has half.img "$T/out"'
run "$KUP" ppp get -s "$DEV" pages-1.img -o "$T/back.bin"
check "... and its data reads back" eval '[ $rc = 0 ] && cmp -s "$T/pages.bin" "$T/back.bin"'
run "$KUP" ppp put -s "$DEV" "$T/pages.bin" pages-2.img
check "... and a new transaction can start (the lock died with the writer)" [ $rc = 0 ]

# corruption through the device (same page cache as the mapping)
run "$KUP" ppp ls "$DEV" --json
off=$(sed -n 's/.*"name": "pages-2.img", "size": "8388608", "offset": "\([0-9]*\)".*/\1/p' "$T/out")
check "ls gives the offset of pages-2.img" [ -n "$off" ]
printf 'X' | dd of="$DEV" bs=1 seek=$((off + 3 * 1048576 + 7)) conv=notrunc status=none
run "$KUP" ppp verify "$DEV"
check "verify of a corrupted extent fails (1), naming it" \
	eval '[ $rc = 1 ] && has "blob '"'"'pages-2.img'"'"' extent 3/8" "$T/err"'

run "$KUP" ppp scrub "$DEV"
check "scrub" [ $rc = 0 ]
run "$KUP" ppp verify "$DEV"
check "after scrub: verify succeeds, no checkpoint" \
	eval '[ $rc = 0 ] && has "no checkpoint" "$T/out"'
check "after scrub: the data area reads as zeros" \
	cmp -s <(dd if="$DEV" bs=1M skip=1 count=8 status=none) <(head -c $((8 << 20)) /dev/zero)

# A short shared flock on the device, as systemd-udevd takes after every
# close of a writable fd, is waited out; a long one is reported as busy.
flock -s "$DEV" sleep 1 &
holder=$!
sleep 0.2
run "$KUP" ppp put -s "$DEV" "$T/pages.bin" pages-3.img
check "put while another process holds a shared flock for 1 s: waits, succeeds" [ $rc = 0 ]
wait $holder
flock -s "$DEV" sleep 8 &
holder=$!
sleep 0.2
run "$KUP" ppp put -s "$DEV" "$T/pages.bin" pages-4.img
check "... held for 8 s: fails (1), the store is busy" \
	eval '[ $rc = 1 ] && has "in use by another process" "$T/err"'
kill $holder 2>/dev/null
wait $holder 2>/dev/null

echo "1..$n"
[ $failed = 0 ]
