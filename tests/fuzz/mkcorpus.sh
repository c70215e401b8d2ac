#!/bin/bash
# Seed the image fuzz targets from real checkpoints: dump a few test
# programs with build/kup (root; make all progs first) and convert each
# checkpoint (mkcorpus.py).  fuzz-ppp-open also runs on the ppp seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
KUP=${KUP:-build/kup}
# an fd leaked by the caller would be in every dumped tree
for fd in $(ls /proc/$$/fd); do
	[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/files-mappings" "$T/files-files-zoo"
shm=kup-fuzz-seed-$$
for prog in counter proctree threads mappings files-zoo pipechain sigstate cowtree; do
	case $prog in
	mappings) args=("$T/files-mappings" "$shm") ;;
	files-zoo) args=("$T/files-files-zoo") ;;
	*) args=() ;;
	esac
	setsid build/progs/$prog "${args[@]}" > "$T/$prog.out" 2>&1 &
	pid=$!
	sleep 1
	if "$KUP" dump -t "$pid" -D "$T/$prog" > "$T/$prog.log" 2>&1; then
		python3 tests/fuzz/mkcorpus.py "$T/$prog" "$prog"
		echo "seeded from $prog"
	else
		echo "cannot dump $prog:"; cat "$T/$prog.log"
		kill -9 -- "-$pid" 2>/dev/null || true	# its process group: the whole tree
	fi
	wait "$pid" 2>/dev/null || true
done
rm -f "/dev/shm/$shm"
