#!/bin/bash
# memfds in the shapes programs use them come back: one with content, an
# odd size and seals against shrinking and growing (and sealing); one held
# both as an fd and a shared mapping (one object: a write through the
# mapping is read through the fd); one only mapped, its fd closed; one
# sealed F_SEAL_FUTURE_WRITE, mapped read-only.  The program checks each
# itself (tests/progs/memfds.c), before and after dump, kill and restore.
. "$(dirname "$0")/../lib.sh"
require_root
plan 7

pid=$(start_bg "$T/out" "$PROGS/memfds")
wait_for_line "$T/out" '^READY' || bail "memfds did not start"
check "its self-check passes before the dump" request_check "$pid" "$T/out"
dump_and_restore "$pid" "$T/img" || exit 1
check "its self-check passes after the restore: sizes, seals, contents, one object for fd and mapping" \
	request_check "$pid" "$T/out"
check "and again (a second write through B's mapping)" request_check "$pid" "$T/out"
