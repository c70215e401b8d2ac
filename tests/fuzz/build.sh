#!/bin/bash
# Build the libFuzzer targets (tests/fuzz/fuzz-*.c) with clang, ASan and UBSan.
#   tests/fuzz/build.sh            build into build/fuzz/
#   tests/fuzz/build.sh run [SECS] build, then run each target on its corpus
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/fuzz
mkdir -p "$out/proto"
for p in ckpt-core/proto/*.proto; do
	protoc-c --proto_path=ckpt-core/proto --c_out="$out/proto" "$p"
done
CFLAGS=(-std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
	-I"$out/proto" -Ickpt-core/include -Ickpt-core -Iarch/include -Iarch/x86_64/include
	-Ippp/include -Ikup)
LIBS=(-lprotobuf-c -lcap -lkmod -lblkid -lisal -lxxhash -lnftables -lmnl)
SRC=(ckpt-core/*.c arch/x86_64/*.c ppp/*.c "$out"/proto/*.pb-c.c)
for t in tests/fuzz/fuzz-*.c; do
	name=$(basename "$t" .c)
	clang "${CFLAGS[@]}" -o "$out/$name" "$t" "${SRC[@]}" "${LIBS[@]}"
	echo "built $out/$name"
done
if [ "${1:-}" = run ]; then
	secs=${2:-60}
	for t in tests/fuzz/fuzz-*.c; do
		name=$(basename "$t" .c)
		corpus=tests/fuzz/corpus/${name#fuzz-}
		mkdir -p "$corpus" "$out/new-$name"
		"$out/$name" -max_total_time="$secs" "$out/new-$name" "$corpus"
	done
fi
