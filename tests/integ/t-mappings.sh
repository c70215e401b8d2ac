#!/bin/bash
# Every kind of mapping comes back with its contents and its sharing: shared
# anonymous memory and a memfd and a /dev/shm file shared with a child (both
# ways), a MAP_PRIVATE file mapping with dirty pages (the file untouched), a
# 64 MiB brk heap (same break), a PROT_NONE guard that still faults.  The
# address space looks the same in /proc/PID/maps.
. "$(dirname "$0")/../lib.sh"

shm=kup-test-mappings-$$
at_exit "rm -f /dev/shm/$shm"
mkdir -p "$T/files"
pid=$(start_bg "$T/out" "$PROGS/mappings" "$T/files" "$shm")
wait_for_line "$T/out" '^READY' || bail "mappings did not start"
child=$(line_field "$T/out" '^PID CHILD ' 3)
pre=$(request_check "$pid" "$T/out")
check "its self-check passes before the dump" grep -q '^CHECK 1 OK ' <<< "$pre"
note "$pre"

# The address space as an application sees it: address range, permissions,
# offset and name of each mapping, the vDSO pages left out, and adjacent
# mappings that continue each other (same permissions and name, contiguous
# offsets) joined: how the kernel splits them into VMAs is its own business
# (a library's RELRO part, for one, may or may not stay a separate VMA).
# Inode numbers are left out too: a restored memfd is a new file.  The name
# of a shared memory object without a path (shared anonymous memory, a memfd)
# is shown as "(shm)": those names have checks of their own below.
layout() {
	python3 - /proc/$1/maps <<'PY'
import sys
out = []
for line in open(sys.argv[1]):
    f = line.split(maxsplit=5)
    name = f[5].strip() if len(f) > 5 else ""
    if name in ("[vdso]", "[vvar]", "[vvar_vclock]"):
        continue
    if name == "/dev/zero (deleted)" or (name.startswith("/memfd:") and name.endswith(" (deleted)")):
        name = "(shm)"
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    off = int(f[2], 16)
    if out:
        plo, phi, pperm, poff, pname = out[-1]
        if phi == lo and pperm == f[1] and pname == name and \
           (name == "" or name.startswith("[") or poff + (phi - plo) == off):
            out[-1][1] = hi
            continue
    out.append([lo, hi, f[1], off, name])
for lo, hi, perm, off, name in out:
    print("%x-%x %s %08x %s" % (lo, hi, perm, off, name))
PY
}
maps_parent=$(layout "$pid")
maps_child=$(layout "$child")

dump_and_restore "$pid" "$T/img" || exit 1
check "the child (pid $child) is back too" alive "$child"
post=$(request_check "$pid" "$T/out")
check "its self-check passes after the restore (contents, sharing both ways, guard faults, break)" \
	grep -q '^CHECK 2 OK ' <<< "$post"
note "$post"
check "the checksums of every region are the ones from before the dump" \
	[ "${pre#CHECK 1 OK }" = "${post#CHECK 2 OK }" ]
check "the parent's mappings are the same (addresses, permissions, offsets, files)" \
	diff <(echo "$maps_parent") <(layout "$pid")
check "the child's mappings are the same" diff <(echo "$maps_child") <(layout "$child")
check "the memfd mapping keeps its name (memfd:kup-test-memfd)" \
	grep -q ' rw-s .* /memfd:kup-test-memfd (deleted)$' /proc/$pid/maps
check "shared anonymous memory still shows as /dev/zero (deleted), as any MAP_SHARED|MAP_ANONYMOUS does" \
	grep -q ' rw-s .* /dev/zero (deleted)$' /proc/$pid/maps
check "... in the child too" grep -q ' rw-s .* /dev/zero (deleted)$' /proc/$child/maps
check "no mapping is a memfd made up by the restore" eval '! grep -q kup-shmem /proc/$pid/maps /proc/$child/maps'
# address range and inode of each shared anonymous mapping
zero_maps() { awk '/ \/dev\/zero \(deleted\)$/ { print $1, $5 }' /proc/$1/maps; }
check "parent and child map one shared anonymous object (same address, same inode)" \
	eval '[ -n "$(zero_maps $pid)" ] && [ "$(zero_maps $pid)" = "$(zero_maps $child)" ]'
check "no ERROR line" [ "$(lines_count "$T/out" ERROR)" = 0 ]
