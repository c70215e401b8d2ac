#!/bin/bash
# Build the libFuzzer targets (tests/fuzz/fuzz-*.c) with clang, ASan and UBSan.
#   tests/fuzz/build.sh              build into build/fuzz/
#   tests/fuzz/build.sh run [SECS]   build, then run each target on its corpus
#                                    for SECS seconds (default 30); one line
#                                    per target: execs, cov and ft (from
#                                    libFuzzer's final stats), corpus size
#   FUZZ_TARGETS="imageset mm" ...   only these targets
# Each target's corpus is tests/fuzz/corpus/NAME (NAME: fuzz-NAME.c); what a
# run finds goes to build/fuzz/new-fuzz-NAME, crashes to
# build/fuzz/crash-NAME-* (copy a fixed one into the corpus: a regression).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/fuzz
mkdir -p "$out/proto" "$out/obj"
for p in ckpt-core/proto/*.proto; do
	protoc-c --proto_path=ckpt-core/proto --c_out="$out/proto" "$p"
done
CFLAGS=(-std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined
	-I"$out/proto" -Ickpt-core/include -Ickpt-core -Iarch/include -Iarch/x86_64/include
	-Ippp/include -Ikup)
LIBS=(-lprotobuf-c -lcap -lkmod -lblkid -lisal -lxxhash -lnftables -lmnl -ljansson)
# the engine (kup show's decoder with it) and the store: compiled once, linked into each
SRC=(ckpt-core/*.c arch/x86_64/*.c ppp/*.c "$out"/proto/*.pb-c.c)
objs=()
for s in "${SRC[@]}"; do
	o=$out/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')
	if [ ! -e "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find ckpt-core kup ppp arch "$out/proto" \
			-name '*.h' -newer "$o" 2>/dev/null | head -n 1)" ]; then
		clang "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -c -o "$o" "$s"
	fi
	objs+=("$o")
done
targets=()
for t in tests/fuzz/fuzz-*.c; do
	name=$(basename "$t" .c)
	if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" ${name#fuzz-} "* ]]; then
		continue
	fi
	targets+=("$name")
	clang "${CFLAGS[@]}" -fsanitize=fuzzer -o "$out/$name" "$t" "${objs[@]}" "${LIBS[@]}"
	echo "built $out/$name"
done
if [ "${1:-}" = run ]; then
	secs=${2:-30}
	for name in "${targets[@]}"; do
		corpus=(tests/fuzz/corpus/${name#fuzz-})
		# the store opened from a file or device: the in-memory store's seeds too
		[ "$name" = fuzz-ppp-open ] && corpus+=(tests/fuzz/corpus/ppp)
		mkdir -p "${corpus[@]}" "$out/new-$name"
		log=$out/$name.log
		rc=0
		"$out/$name" -max_total_time="$secs" -rss_limit_mb=2048 \
			-artifact_prefix="$out/crash-${name#fuzz-}-" \
			"$out/new-$name" "${corpus[@]}" > "$log" 2>&1 || rc=$?
		# the last stats line: "#EXECS DONE cov: C ft: F corp: N/..."
		awk -v n="$name" -v rc=$rc '
			/^#[0-9]+/ { execs = substr($1, 2); for (i = 2; i < NF; i++) {
				if ($i == "cov:") cov = $(i + 1); if ($i == "ft:") ft = $(i + 1);
				if ($i == "corp:") corp = $(i + 1) } }
			END { printf "%-16s execs %10s  cov %6s  ft %7s  corpus %-10s %s\n", n,
				execs, cov, ft, corp, rc ? "FAILED (see build/fuzz/" n ".log)" : "ok" }' "$log"
	done
fi
