#!/bin/bash
# Benchmarks: figures, never assertions (timings vary with the machine).
#  1. kup dump and kup restore -d of a process with BENCH_MB (default 1024)
#     MiB of touched anonymous memory (tests/progs/bigmem), beside one memcpy
#     of the same size measured in the same run (build/bench/memcpy); the
#     images go to a tmpfs directory under /dev/shm, so the figures are the
#     engine's, not the disk's;
#  1c. kup restore --lazy of the same images: until the tree runs and until
#     its memory is complete (kup-lazy exits);
#  1e. the same through a store file (kup ppp format in the tmpfs): kup dump
#     --ppp, kup restore --ppp eagerly, and lazily (until it runs, until its
#     memory is complete); and the floor of the dump's write into such a
#     file (build/bench/store-floor): the pages read alone, and written
#     alone with pwrite() and through the file's mapping;
#  1g. the same into a store file in hugetlbfs (huge pages reserved for it
#     for the run, as a pmem region is at boot), where they can be had;
#  1f. the peer, criu (on PATH, or BENCH_CRIU=PATH), on the same: criu dump,
#     criu restore -d, and lazily with criu lazy-pages (until it runs, until
#     its memory is complete); left out, saying so, where none runs;
#  1d. kup restore -d of BENCH_MB MiB in transparent huge pages
#     (tests/progs/thp): asked for with MADV_HUGEPAGE (the fill's writes
#     fault 2 MiB at a time), and without the advice (4 KiB faults, then
#     MADV_COLLAPSE); how much came back huge; the same lazily;
#  1b. the same for a process with 16 TiB reserved (8 TiB PROT_NONE with
#     MAP_NORESERVE, 8 TiB PROT_NONE) and 104 MiB written
#     (tests/progs/reserve), beside a memcpy of 100 MiB;
#  1c. how long a service with BENCH_MB of memory that rewrites 1% of its
#     pages a second (tests/progs/dirtier) is frozen by kup dump, without and
#     with --pre-dump (the memory copied while it runs, the frozen pass
#     reading only what was written since), as kup reports it; into the
#     directory, and with --pre-dump into a store file too;
#  2. how long a small service is frozen by kup dump --leave-running: a
#     counter printing a realtime timestamp every 1 ms; the frozen time is the
#     largest gap between two consecutive lines around the dump (1 ms
#     resolution, plus the program's own scheduling noise);
#  3. kup dump --tcp-established and kup restore of one process holding 1,
#     100 and 1000 established TCP connections (tests/progs/tcppeer; both
#     ends on the loopback of a network namespace of their own), and the
#     cost per connection between 1 and 1000;
#  4. the persistent page store's own figures (build/bench/ppp-bench), if built.
#
#   KUP=build/kup PROGS=build/progs BENCH_MB=1024 bench/run.sh
#
# Exits non-zero only when a step could not run at all (kup failed).
set -u
cd "$(dirname "$0")/.."
KUP=$(readlink -f "${KUP:-build/kup}")
PROGS=$(readlink -f "${PROGS:-build/progs}")
BENCHBIN=$(readlink -f "${BENCHBIN:-build/bench}")
MB=${BENCH_MB:-1024}
export KUP PROGS BENCHBIN MB

# Killed and detached trees leave zombies that PID 1 does not reap here: run
# under the test reaper, which reaps them and kills what is left at the end.
if [ -z "${KUP_BENCH_REAPED:-}" ]; then
	[ -x "$PROGS/reaper" ] || { echo "bench: $PROGS/reaper missing (make progs)"; exit 1; }
	KUP_BENCH_REAPED=1 exec "$PROGS/reaper" bash "$0" "$@"
fi

# Stray fds inherited from our caller would join the dumped trees.
for fd in $(ls /proc/$$/fd); do
	[ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] && eval "exec $fd>&-" 2> /dev/null
done

dir=$(mktemp -d /dev/shm/kup-bench.XXXXXX)
trap '! declare -F hugetlb_done > /dev/null || hugetlb_done; rm -rf "$dir"' EXIT
failed=0

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# wait_line FILE REGEX SECONDS
wait_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
wait_gone() { while [ -d /proc/$1 ]; do sleep 0.01; done; }
row() { printf '%-52s %12s\n' "$1" "$2"; }

echo "== kup benchmarks: $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), kup $KUP"
echo "   images in $dir (tmpfs)"
row "what" "time"

# 1c. kup restore --lazy of bigmem's images (the restored copy killed first):
# until the tree runs, and until kup-lazy has brought the last page in
# (nothing touches the memory meanwhile: the background pass alone).
# lazy_rows WHAT ARGS...: kup restore ARGS -d --lazy, timed until the tree
# runs and until kup-lazy has brought the last page in; then the restored
# copy checks its memory
lazy_rows() {
	local what=$1 t0 t1 t2 lz
	shift
	t0=$(now_ms)
	if ! "$KUP" restore "$@" -d --lazy > "$dir/lazy.log" 2>&1; then
		row "kup restore $* -d --lazy" "failed"
		sed 's/^/    /' "$dir/lazy.log" | tail -n 5
		failed=1
		return
	fi
	t1=$(now_ms)
	lz=$(grep -oE 'pid [0-9]+ \(kup-lazy\)' "$dir/lazy.log" | awk '{ print $2 }')
	while [ -n "$lz" ] && [ -d /proc/$lz ] && ! grep -q '^State:.*[ZX]' /proc/$lz/status 2> /dev/null; do
		sleep 0.01
	done
	t2=$(now_ms)
	row "$what: until it runs" "$((t1 - t0)) ms"
	row "  ... until its memory is complete" "$((t2 - t0)) ms"
	bench_check "$dir/bigmem" "lazily restored memory checksum"
}
lazy_restore() {
	kill -9 "$pid" 2> /dev/null
	wait_gone "$pid"
	# the restored copy writes at its offset of the dump: the eager copy's
	# CHECK line goes, so that the lazy copy's is seen
	truncate -s "$dumped_size" "$dir/bigmem"
	lazy_rows "kup restore -d --lazy of the same" -D "$dir/img"
}

# 1e. the same through a store file (kup ppp format, in the tmpfs): kup dump
# --ppp, kup restore --ppp -d (eager), then dumped again and restored
# --lazy (until it runs, until its memory is complete).  The lazily restored
# copy of 1c is dumped; each restored copy's checksum is checked.
# bench_check FILE WHAT: the restored copy (pid) checks its memory
bench_check() {
	local n
	n=$(grep -cE "^CHECK [0-9]+ OK sum=$sum " "$1")
	kill -USR1 "$pid"
	for ((i = 0; i < 1200; i++)); do
		[ "$(grep -cE "^CHECK [0-9]+ OK sum=$sum " "$1")" -gt "$n" ] && { row "  $2" "same"; return; }
		sleep 0.05
	done
	row "  $2" "DIFFERENT"
	failed=1
}
# timed_kup WHAT LOG ARGS...: kup -q ARGS, its time a row (WHAT; "" for none);
# a failure is a row with the last lines of LOG
timed_kup() {
	local what=$1 log=$2 t0 t1
	shift 2
	t0=$(now_ms)
	if ! "$KUP" -q "$@" > "$log" 2>&1; then
		row "kup $*" "failed"
		sed 's/^/    /' "$log" | tail -n 5
		failed=1
		return 1
	fi
	t1=$(now_ms)
	[ -z "$what" ] || row "$what" "$((t1 - t0)) ms"
}
# dump_bigmem WHAT ARGS...: the restored bigmem dumped (timed_kup), gone,
# its output file as it was at the dump (the next copy's lines follow)
dump_bigmem() {
	local what=$1 sz
	shift
	sz=$(stat -c %s "$dir/bigmem")
	timed_kup "$what" "$dir/dump.log" dump -t "$pid" "$@" || return 1
	wait_gone "$pid"
	truncate -s "$sz" "$dir/bigmem"
}
store_rows() {
	local S="$dir/store.ppp"
	timed_kup "" "$dir/fmt.log" ppp format "$S" --size $((MB * 3 / 2 + 64))M || return
	dump_bigmem "kup dump --ppp into a store file just formatted (+ kill)" --ppp "$S" || return
	timed_kup "kup restore --ppp -d of the same (eager)" "$dir/restore.log" \
		restore --ppp "$S" -d --eager || return
	bench_check "$dir/bigmem" "restored memory checksum"
	# a store is formatted once and used many times: its pages written and
	# wiped (the restore's scrub) before
	dump_bigmem "kup dump --ppp into the same store, used before (+ kill)" --ppp "$S" || return
	lazy_rows "kup restore --ppp -d --lazy" --ppp "$S"
	rm -f "$S"
	hugetlb_rows
	store_floor
}
# 1g. the same into a store file in hugetlbfs: huge pages reserved for the
# store (nr_hugepages, raised for the run and given back), as a pmem region
# is reserved at boot.  No page cache: kup dump reads the pages straight
# into the store's mapping (one copy, on two CPUs).  Left out, saying so,
# where huge pages cannot be had.
hp_old=
hugetlb_done() {
	[ -n "$hp_old" ] || return 0
	umount "$dir/hp" 2> /dev/null
	echo "$hp_old" > /proc/sys/vm/nr_hugepages
	hp_old=
}
hugetlb_rows() {
	local mb=$((MB * 3 / 2 + 64)) S="$dir/hp/store.ppp" need
	need=$(((mb + 1) / 2))
	if ! grep -qw hugetlbfs /proc/filesystems || [ ! -w /proc/sys/vm/nr_hugepages ]; then
		row "store file in hugetlbfs" "n/a (no hugetlbfs)"
		return
	fi
	hp_old=$(cat /proc/sys/vm/nr_hugepages)
	echo $((hp_old + need)) > /proc/sys/vm/nr_hugepages
	mkdir -p "$dir/hp"
	if [ "$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)" -lt "$need" ] ||
	   ! mount -t hugetlbfs -o pagesize=2M none "$dir/hp"; then
		row "store file in hugetlbfs" "n/a (not $need free huge pages)"
		hugetlb_done
		return
	fi
	if timed_kup "" "$dir/fmt.log" ppp format "$S" --size $((need * 2))M &&
	   dump_bigmem "kup dump --ppp into a store file in hugetlbfs (+ kill)" --ppp "$S" &&
	   timed_kup "kup restore --ppp -d of the same (eager)" "$dir/restore.log" \
		restore --ppp "$S" -d --eager; then
		bench_check "$dir/bigmem" "restored memory checksum"
		dump_bigmem "kup dump --ppp into the same, used before (+ kill)" --ppp "$S" &&
			lazy_rows "kup restore --ppp -d --lazy (hugetlbfs)" --ppp "$S"
	fi
	rm -f "$S"
	hugetlb_done
}
# The floor of the dump's write into a store file in this tmpfs: the paths
# its pages can take, each alone, on two threads where the dump uses two
# (bench/store-floor.c), beside the warm memcpy of the same run.
store_floor() {
	local f="$dir/floor"
	[ -x "$BENCHBIN/store-floor" ] || { row "store floor ($BENCHBIN/store-floor not built)" "n/a"; return; }
	if ! "$BENCHBIN/store-floor" "$dir" "$MB" > "$f" 2>&1; then
		row "store floor" "failed"
		sed 's/^/    /' "$f" | tail -n 3
		return
	fi
	fl() { awk -v k="$1" '$1 == k { printf "%.0f ms", $2 }' "$f"; }
	row "the dump's write into a store file, each path alone:" ""
	row "  read the pages (2 threads, XXH3), no write" "$(fl read_ms)"
	row "  pwrite into allocated pages (one writer)" "$(fl pwrite_allocated_ms)"
	row "  pwrite into pages written before" "$(fl pwrite_written_ms)"
	row "  into the mapping, pages written before" "$(fl mapped_ms)"
	row "    populate / copy (2 threads) / munmap" \
		"$(fl mapped_populate_ms) / $(fl mapped_copy_ms) / $(fl mapped_munmap_ms)"
	row "  into the mapping, pages only allocated" "$(fl mapped_fresh_ms)"
	row "  warm memcpy in the same run" "$(fl memcpy_warm_ms)"
}

# 1. memcpy yardstick, then dump and restore of bigmem.
if [ -x "$BENCHBIN/memcpy" ]; then
	"$BENCHBIN/memcpy" "$MB" > "$dir/memcpy"
	row "memcpy $MB MiB into untouched memory" "$(awk '/fresh_ms/ { print $2 " ms" }' "$dir/memcpy")"
	row "memcpy $MB MiB into touched memory" "$(awk '/warm/ { print $2 " ms" }' "$dir/memcpy")"
else
	row "memcpy ($BENCHBIN/memcpy not built)" "n/a"
fi

# bigmem leaves a quarter of its region untouched: map 4/3 to touch $MB.
setsid "$PROGS/bigmem" $(( (MB * 4 + 2) / 3 )) > "$dir/bigmem" 2>&1 < /dev/null &
pid=$!
disown $pid
if wait_line "$dir/bigmem" '^READY' 120; then
	sum=$(awk '/^SUM/ { print $2 }' "$dir/bigmem")
	pages=$(grep -o 'touched_pages=[0-9]*' "$dir/bigmem" | cut -d= -f2)
	t0=$(now_ms)
	if "$KUP" -q dump -t "$pid" -D "$dir/img" > "$dir/dump.log" 2>&1; then
		t1=$(now_ms)
		row "kup dump, $((pages / 256)) MiB touched (+ kill)" "$((t1 - t0)) ms"
		dumped_size=$(stat -c %s "$dir/bigmem")
		row "  image size" "$(du -sm "$dir/img" | cut -f1) MiB"
		wait_gone "$pid"
		t2=$(now_ms)
		if "$KUP" -q restore -D "$dir/img" -d > "$dir/restore.log" 2>&1; then
			t3=$(now_ms)
			row "kup restore -d of the same" "$((t3 - t2)) ms"
			kill -USR1 "$pid"
			if wait_line "$dir/bigmem" "^CHECK 1 OK sum=$sum " 60; then
				row "  restored memory checksum" "same"
			else
				row "  restored memory checksum" "DIFFERENT"
				failed=1
			fi
			lazy_restore
			store_rows
		else
			row "kup restore -d" "failed"
			sed 's/^/    /' "$dir/restore.log" | tail -n 5
			failed=1
		fi
	else
		row "kup dump" "failed"
		sed 's/^/    /' "$dir/dump.log" | tail -n 5
		failed=1
	fi
	kill -9 "$pid" 2> /dev/null
	wait_gone "$pid"
else
	row "bigmem did not start" "n/a"
	failed=1
fi
rm -rf "$dir/img"

# 1f. the peer: criu (BENCH_CRIU, or criu on PATH) on the same bigmem:
# criu dump, criu restore -d, and a lazy restore (criu lazy-pages on the same
# images: until the tree runs, until the daemon has brought every page in).
# Debian 12's criu 3.17 does not run on kernels as new as 6.18; one built
# from its source does (`criu check` decides).  Its images go to the same
# tmpfs; each restored copy's checksum is checked.
# crit_time WHAT LOG CMD...: CMD timed as a row, its log's errors on failure
crit_time() {
	local what=$1 log=$2 t0 t1
	shift 2
	t0=$(now_ms)
	if ! "$@" > "$dir/criu.out" 2>&1; then
		row "$what" "failed"
		grep -h 'Error' "$log" "$dir/criu.out" 2> /dev/null | tail -n 3 | sed 's/^/    /'
		return 1
	fi
	t1=$(now_ms)
	row "$what" "$((t1 - t0)) ms"
}
criu_rows() {
	local C=$1 ci="$dir/criu-img" sz t0 lz
	setsid "$PROGS/bigmem" $(( (MB * 4 + 2) / 3 )) > "$dir/bigmem" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	if ! wait_line "$dir/bigmem" '^READY' 120; then
		row "bigmem did not start (criu)" "n/a"
		return
	fi
	sum=$(awk '/^SUM/ { print $2 }' "$dir/bigmem")
	mkdir -p "$ci"
	crit_time "criu dump, the same (+ kill)" "$ci/dump.log" "$C" dump -t "$pid" -D "$ci" -o dump.log ||
		{ kill -9 "$pid"; return; }
	wait_gone "$pid"
	sz=$(stat -c %s "$dir/bigmem")	# criu checks an open file's size
	crit_time "criu restore -d of it" "$ci/restore.log" "$C" restore -D "$ci" -d -o restore.log &&
		bench_check "$dir/bigmem" "restored memory checksum"
	kill -9 "$pid" 2> /dev/null
	wait_gone "$pid"
	truncate -s "$sz" "$dir/bigmem"
	"$C" lazy-pages -D "$ci" -o lazy.log > /dev/null 2>&1 &
	lz=$!
	sleep 0.5	# its socket
	t0=$(now_ms)
	if crit_time "criu restore -d --lazy-pages: until it runs" "$ci/restore2.log" \
		"$C" restore -D "$ci" -d --lazy-pages -o restore2.log; then
		wait "$lz"
		row "  ... until its memory is complete (lazy-pages exits)" "$(($(now_ms) - t0)) ms"
		bench_check "$dir/bigmem" "lazily restored memory checksum"
	else
		kill "$lz" 2> /dev/null
	fi
	kill -9 "$pid" 2> /dev/null
	wait_gone "$pid"
	rm -rf "$ci"
}
CRIU=${BENCH_CRIU:-$(command -v criu)}
if [ -z "$CRIU" ]; then
	row "criu: none on PATH (BENCH_CRIU=PATH)" "n/a"
elif ! "$CRIU" check > "$dir/criu.out" 2>&1; then
	row "criu $("$CRIU" --version 2> /dev/null | awk '/Version/ { print $2 }'): criu check fails here" "n/a"
else
	echo "   beside it: criu $("$CRIU" --version | awk '/Version/ { print $2 }') ($CRIU)"
	criu_rows "$CRIU"
	"$CRIU" check --feature mem_dirty_track > /dev/null 2>&1 ||
		row "criu pre-dump: no dirty tracking here (soft-dirty)" "n/a"
fi

# 1d. BENCH_MB MiB in transparent huge pages (skipped where THP is off).
# thp_huge PID AREA: AnonHugePages of the mapping holding AREA, in MiB
thp_huge() {
	awk -v a="$2" '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); in_it = (strtonum("0x" r[1]) <= strtonum("0x" a) && strtonum("0x" a) < strtonum("0x" r[2])) }
		in_it && /^AnonHugePages:/ { print int($2 / 1024) }' /proc/$1/smaps
}
thp_bench() {
	local mode=$1 what=$2 t0 t1 area lz i k=0
	# appended to: each restored copy's CHECK 1 line adds to the file
	: > "$dir/thp"
	setsid "$PROGS/thp" "$MB" "$mode" >> "$dir/thp" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	if ! wait_line "$dir/thp" '^READY' 120 || grep -q '^NOCOLLAPSE' "$dir/thp"; then
		row "thp $mode did not start (or no MADV_COLLAPSE)" "n/a"
		kill -9 "$pid" 2> /dev/null
		return
	fi
	area=$(awk '/^AREA/ { print $2 }' "$dir/thp")
	row "$what: huge before the dump" "$(thp_huge "$pid" "$area") MiB"
	if ! "$KUP" -q dump -t "$pid" -D "$dir/img" > "$dir/dump.log" 2>&1; then
		row "kup dump ($what)" "failed"
		failed=1
		kill -9 "$pid" 2> /dev/null
		return
	fi
	wait_gone "$pid"
	for lazy in "" --lazy; do
		t0=$(now_ms)
		if ! "$KUP" restore -D "$dir/img" -d -v $lazy > "$dir/restore.log" 2>&1; then
			row "kup restore -d $lazy ($what)" "failed"
			sed 's/^/    /' "$dir/restore.log" | tail -n 5
			failed=1
			break
		fi
		t1=$(now_ms)
		if [ -z "$lazy" ]; then
			row "kup restore -d, $what" "$((t1 - t0)) ms"
			row "  of which pages written (CPU time of both threads)" \
				"$(sed -n 's/.*written into the tasks \([0-9.]*\) ms.*/\1 ms/p' "$dir/restore.log")"
		else
			lz=$(grep -oE 'pid [0-9]+ \(kup-lazy\)' "$dir/restore.log" | awk '{ print $2 }')
			while [ -n "$lz" ] && [ -d /proc/$lz ] && ! grep -q '^State:.*[ZX]' /proc/$lz/status 2> /dev/null; do
				sleep 0.01
			done
			row "  --lazy: until it runs" "$((t1 - t0)) ms"
			row "  --lazy: until its memory is complete" "$(($(now_ms) - t0)) ms"
		fi
		row "  huge after the restore${lazy:+ $lazy}" "$(thp_huge "$pid" "$area") MiB"
		k=$((k + 1))
		kill -USR1 "$pid"
		for ((i = 0; i < 2400; i++)); do
			[ "$(grep -c '^CHECK 1 OK' "$dir/thp")" -ge $k ] && break
			sleep 0.05
		done
		if [ "$(grep -c '^CHECK 1 OK' "$dir/thp")" -ge $k ]; then
			row "  contents" "same"
		else
			row "  contents" "DIFFERENT"
			failed=1
		fi
		kill -9 "$pid" 2> /dev/null
		wait_gone "$pid"
	done
	rm -rf "$dir/img"
}
if grep -qE '\[(madvise|always)\]' /sys/kernel/mm/transparent_hugepage/enabled 2> /dev/null; then
	# the yardstick beside it: the same memcpy into fresh huge pages (just
	# freed by another mapping, as the restore after the dump's kill finds
	# them), on two CPUs as the restore fills them
	row "memcpy $MB MiB into fresh THP memory, 2 threads" \
		"$(awk '/fresh_thp2/ { print $2 " ms" }' "$dir/memcpy" 2> /dev/null)"
	thp_bench advise "$MB MiB THP-backed (MADV_HUGEPAGE)"
	thp_bench collapse "$MB MiB THP-backed, no advice"
else
	row "transparent huge pages off here" "n/a"
fi

# 1c. frozen time of a service writing 1% of its pages a second, with and
# without the pre-dump rounds; the restored memory is checked page by page.
# (-D into the tmpfs directory, twice; then --ppp into a store file there)
for how in "-D" "-D --pre-dump" "--ppp --pre-dump"; do
	pre=${how#* }
	[ "$pre" = "$how" ] && pre=""
	if [ "${how%% *}" = --ppp ]; then
		img=(--ppp "$dir/store.ppp")
		"$KUP" -q ppp format "$dir/store.ppp" --size $((MB * 3 / 2 + 64))M > /dev/null 2>&1 ||
			{ row "kup ppp format (a store file)" "failed"; failed=1; continue; }
	else
		img=(-D "$dir/img")
	fi
	setsid "$PROGS/dirtier" "$MB" 1 $((MB * 256 / 100 + 1)) > "$dir/dirtier" 2>&1 < /dev/null &
	pid=$!
	disown $pid
	if ! wait_line "$dir/dirtier" '^READY' 120; then
		row "dirtier did not start" "n/a"
		failed=1
		kill -9 "$pid" 2> /dev/null
		continue
	fi
	sleep 1
	what="kup dump${pre:+ $pre}"
	[ "${img[0]}" = --ppp ] && what="$what --ppp (store file)"
	what="$what, $MB MiB, 1%/s written"
	if "$KUP" dump -t "$pid" "${img[@]}" $pre > "$dir/dump.log" 2>&1; then
		if [ -n "$pre" ]; then
			row "$what: frozen" "$(sed -n 's/.*then frozen \([0-9.]*\) ms.*/\1 ms/p' "$dir/dump.log")"
			row "  pre-dump rounds (running)" \
				"$(sed -n 's/.*pre-dump \([0-9.]*\) ms while.*/\1 ms/p' "$dir/dump.log")"
			row "  pages read frozen" "$(sed -n 's/.*pre-dump, \([0-9]*\) read now.*/\1/p' "$dir/dump.log")"
		else
			row "$what: frozen" "$(sed -n 's/.*pages in \([0-9.]*\) ms to.*/\1 ms/p' "$dir/dump.log")"
		fi
		wait_gone "$pid"
		if "$KUP" -q restore "${img[@]}" -d > "$dir/restore.log" 2>&1; then
			kill -USR1 "$pid"
			wait_line "$dir/dirtier" '^CHECK 1 OK' 60 || { row "  restored memory" "WRONG"; failed=1; }
		else
			row "  kup restore -d" "failed"
			failed=1
		fi
	else
		row "$what" "failed"
		sed 's/^/    /' "$dir/dump.log" | tail -n 5
		failed=1
	fi
	kill -9 "$pid" 2> /dev/null
	wait_gone "$pid"
	rm -rf "$dir/img" "$dir/store.ppp"
done

# 1b. a huge reservation with few pages (as MariaDB's 8 TiB): the costs must
# follow the pages that exist, not the address space.  tests/progs/reserve:
# 8 TiB PROT_NONE MAP_NORESERVE with 100 MiB written, 1 TiB MAP_NORESERVE
# with a page per GiB, 8 TiB PROT_NONE; beside a memcpy of 100 MiB.
if [ -x "$BENCHBIN/memcpy" ]; then
	"$BENCHBIN/memcpy" 100 > "$dir/memcpy100"
	row "memcpy 100 MiB into untouched memory" "$(awk '/fresh_ms/ { print $2 " ms" }' "$dir/memcpy100")"
fi
setsid "$PROGS/reserve" -r 8 -t 100 > "$dir/reserve" 2>&1 < /dev/null &
pid=$!
disown $pid
if wait_line "$dir/reserve" '^C 1 ' 60; then
	sum=$(sed -n 's/^READY .* sum=//p' "$dir/reserve")
	t0=$(now_ms)
	if "$KUP" -q dump -t "$pid" -D "$dir/img" > "$dir/dump.log" 2>&1; then
		t1=$(now_ms)
		row "kup dump, 8+8 TiB reserved, 104 MiB touched (+ kill)" "$((t1 - t0)) ms"
		row "  image size" "$(du -sm "$dir/img" | cut -f1) MiB"
		wait_gone "$pid"
		t2=$(now_ms)
		if "$KUP" -q restore -D "$dir/img" -d > "$dir/restore.log" 2>&1; then
			t3=$(now_ms)
			row "kup restore -d of the same" "$((t3 - t2)) ms"
			kill -USR1 "$pid"
			if wait_line "$dir/reserve" "^CHECK 1 OK sum=$sum" 60; then
				row "  restored memory checksum" "same"
			else
				row "  restored memory checksum" "DIFFERENT"
				failed=1
			fi
		else
			row "kup restore -d (reservation)" "failed"
			sed 's/^/    /' "$dir/restore.log" | tail -n 5
			failed=1
		fi
	else
		row "kup dump (reservation)" "failed"
		sed 's/^/    /' "$dir/dump.log" | tail -n 5
		failed=1
	fi
	kill -9 "$pid" 2> /dev/null
	wait_gone "$pid"
else
	row "reserve did not start" "n/a"
	failed=1
fi
rm -rf "$dir/img"

# 2. frozen time of a small service under dump --leave-running.
setsid "$PROGS/counter" -i 1 > "$dir/svc" 2>&1 < /dev/null &
svc=$!
disown $svc
sleep 1
t0=$(now_ms)
"$KUP" -q dump -t "$svc" -D "$dir/svcimg" --leave-running > "$dir/svc-dump.log" 2>&1
rc=$?
t1=$(now_ms)
sleep 0.3
kill -9 "$svc"
if [ $rc -eq 0 ]; then
	row "kup dump --leave-running of a 1 ms counter" "$((t1 - t0)) ms"
	# Largest gap between consecutive ticks from 50 ms before the dump
	# started to 50 ms after it ended; and the usual gap, for scale.
	awk -v a=$((t0 - 50)) -v b=$((t1 + 50)) '
		$1 != "C" { next }
		p && $4 >= a && p <= b { d = $4 - p; if (d > m) m = d }
		p && $4 < a { n++; s += $4 - p }
		{ p = $4 }
		END { printf "%d %.1f\n", m, n ? s / n : 0 }' "$dir/svc" > "$dir/gap"
	row "  service frozen (largest gap between 1 ms ticks)" "$(cut -d' ' -f1 "$dir/gap") ms"
	row "  usual gap between ticks before the dump" "$(cut -d' ' -f2 "$dir/gap") ms"
else
	row "kup dump --leave-running" "failed"
	sed 's/^/    /' "$dir/svc-dump.log" | tail -n 5
	failed=1
fi

# 3. established TCP connections.
ns=kup-bench-$$
if ip netns add "$ns" 2> /dev/null && ip -n "$ns" link set lo up; then
	declare -A td tr
	for n in 1 100 1000; do
		nsenter --net=/run/netns/"$ns" setsid "$PROGS/tcppeer" hold-server 127.0.0.1 7400 $n \
			> "$dir/hs" 2>&1 < /dev/null &
		s=$!
		wait_line "$dir/hs" '^LISTEN' 10
		nsenter --net=/run/netns/"$ns" setsid "$PROGS/tcppeer" hold-client 127.0.0.1 7400 $n \
			> "$dir/hc" 2>&1 < /dev/null &
		c=$!
		disown $s $c
		if ! wait_line "$dir/hs" '^HELD' 60; then
			row "$n connections could not be set up" "n/a"
			failed=1
			kill -9 $s $c 2> /dev/null
			continue
		fi
		t0=$(now_ms)
		if ! "$KUP" -q dump -t $s -D "$dir/skimg" --tcp-established > "$dir/skd.log" 2>&1; then
			row "kup dump of $n connections" "failed"
			sed 's/^/    /' "$dir/skd.log" | tail -n 5
			failed=1
			kill -9 $s $c
			continue
		fi
		t1=$(now_ms)
		wait_gone $s
		t2=$(now_ms)
		if nsenter --net=/run/netns/"$ns" "$KUP" -q restore -D "$dir/skimg" -d --tcp-established \
			> "$dir/skr.log" 2>&1; then
			t3=$(now_ms)
			td[$n]=$((t1 - t0)) tr[$n]=$((t3 - t2))
			row "kup dump --tcp-established, $n connections" "${td[$n]} ms"
			row "kup restore -d, $n connections" "${tr[$n]} ms"
			kill -USR1 $c
			wait_line "$dir/hc" '^CHECK 1 OK' 30 || { row "  connections after restore" "BROKEN"; failed=1; }
		else
			row "kup restore of $n connections" "failed"
			sed 's/^/    /' "$dir/skr.log" | tail -n 5
			failed=1
		fi
		kill -9 $s $c 2> /dev/null
		wait_gone $s
		rm -rf "$dir/skimg"
	done
	if [ -n "${td[1000]:-}" ] && [ -n "${td[1]:-}" ]; then
		row "  per connection, dump (1 -> 1000)" \
			"$(awk -v a="${td[1]}" -v b="${td[1000]}" 'BEGIN { printf "%.3f ms", (b - a) / 999 }')"
		row "  per connection, restore (1 -> 1000)" \
			"$(awk -v a="${tr[1]}" -v b="${tr[1000]}" 'BEGIN { printf "%.3f ms", (b - a) / 999 }')"
	fi
	ip netns del "$ns"
else
	row "TCP connections (no network namespace)" "n/a"
fi

# 4. the persistent page store.
if [ -x "$BENCHBIN/ppp-bench" ]; then
	echo "== ppp-bench -s $MB -d $dir"
	"$BENCHBIN/ppp-bench" -s "$MB" -d "$dir"
fi
exit $failed
