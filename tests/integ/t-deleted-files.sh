#!/bin/bash
# Files whose names are gone come back as they were (tests/progs/deleted):
# a 3 GiB deleted file and a 1 GiB memfd with a few bytes of data keep their
# holes (the image holds the data only, the restored files allocate no more
# than the originals); two fds on one deleted inode that had two names are
# one inode again; a file unlinked under the name it was opened by while
# linked under another is that same file again (a write through the fd shows
# under the other name); mode 0640 and owner 65534 of a deleted file; an fd
# on a removed directory and a removed working directory; O_PATH fds on a
# file, a directory, a symbolic link (O_NOFOLLOW), a FIFO, a unix socket's
# file, /dev/null and a removed file; an inotify watch on a removed file
# the process holds open (a write through the fd gives it an event).  A
# deleted file with more data than the files image keeps (130 MiB around a
# 100 MiB hole) has its data in an image of its own and comes back whole,
# hole included.
. "$(dirname "$0")/../lib.sh"
require_root

dir=$T/files
mkdir -p "$dir"
pid=$(start_bg "$T/out" "$PROGS/deleted" "$dir")
wait_for_line "$T/out" '^READY' 30 || bail "deleted did not start: $(tail -n 3 "$T/out")"
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK' <<< "$pre" || note "$pre"

DR_LOG=$T/out dump_and_restore "$pid" "$T/img" || exit 1
size=$(du -sk "$T/img" | cut -f1)
check "the image keeps the data, not the holes (${size} KiB)" [ "$size" -lt 65536 ]
post=$(request_check "$pid" "$T/out")
check "after the restore: contents, holes, sizes, offsets, shared inodes, the name still linked, mode and owner, removed directories, O_PATH, the inotify watch" \
	grep -q '^CHECK 2 OK' <<< "$post" || note "$post"
fd=$(line_field "$T/out" '^FD orig ' 3)
note "fd $fd (was $dir/orig (deleted)) is now $(readlink /proc/$pid/fd/$fd)"
check "fd $fd is the file 'other'" \
	[ "$(stat -L -c %i /proc/$pid/fd/$fd)" = "$(stat -c %i "$dir/other")" ]
fd=$(line_field "$T/out" '^FD sparse ' 3)
check "the sparse file is still a deleted file of 3 GiB" \
	eval '[[ $(readlink /proc/$pid/fd/$fd) == *" (deleted)" ]] &&
	      [ "$(stat -L -c %s /proc/$pid/fd/$fd)" = 3221225472 ]'
post=$(request_check "$pid" "$T/out")
check "a second check passes (writes of the first one read back)" grep -q '^CHECK 3 OK' <<< "$post" || note "$post"
sleep 0.3
check "the counter continues" counter_continues "$T/out" "$pid" "$DR_LINES" 2
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
kill_tree "$pid"
wait_gone "$pid"

# more data than the files image keeps (130 MiB around a 100 MiB hole): the
# data goes to an image of its own and comes back, the hole too
pid=$(start_bg "$T/big" "$PROGS/deleted" -b "$dir")
wait_for_line "$T/big" '^READY' 60 || bail "deleted -b did not start: $(tail -n 2 "$T/big")"
check "kup dump -t $pid" kup_run "$T/dump.log" dump -t "$pid" -D "$T/img.big"
check "the dumped process is gone" wait_gone "$pid"
blob=$(ls "$T"/img.big/file-content-*.img)
check "its 130 MiB of data are in an image of their own" [ "$(stat -c %s "$blob")" = 136314880 ]
orig=$(dd if="$blob" bs=1 skip=1000 count=1 status=none | od -An -c | tr -d ' ')
printf 'X' | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
check_fails "a restore with a byte of that image changed fails" kup_try restore -D "$T/img.big" -d
check "... naming the image" grep -q "file-content-.*does not hold its 136314880 bytes of data" "$T/err"
check "... leaving no process $pid" [ ! -d /proc/$pid ]
printf '%s' "$orig" | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
check "with the byte put back, kup restore -d" kup_run "$T/restore.log" restore -D "$T/img.big" -d
track "$pid"
post=$(request_check "$pid" "$T/big" 120)
check "after the restore: every MiB of it, the hole, the size" grep -q '^CHECK 1 OK' <<< "$post" ||
	note "$post"
kill_tree "$pid"
wait_gone "$pid"
