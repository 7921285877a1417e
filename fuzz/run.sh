#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS [libFuzzer options...]
# Runs one libFuzzer target for SECONDS from its seed corpus fuzz/corpus/TARGET, built with
#   cmake -S . -B build-fuzz -DVOLPREP_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
#   cmake --build build-fuzz --target fuzz_all
# ($VOLPREP_FUZZ_DIR names another build directory). New inputs go to
# BUILD/fuzz-corpus/TARGET, never into the repository; a crash, leak or hang (over 10 s for
# one input) is saved in BUILD/fuzz-artifacts/ and fails the run. Reproduce one with
#   BUILD/fuzz_TARGET FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: fuzz/run.sh TARGET SECONDS [libFuzzer options...]" >&2; exit 2; }
target=$1 seconds=$2; shift 2
build=${VOLPREP_FUZZ_DIR:-$here/../build-fuzz}
binary=$build/fuzz_$target
[ -x "$binary" ] || { echo "fuzz/run.sh: no $binary: build with -DVOLPREP_FUZZ=ON" >&2; exit 2; }
seeds=$here/corpus/$target
[ -d "$seeds" ] || { echo "fuzz/run.sh: no seed corpus $seeds" >&2; exit 2; }
work=$build/fuzz-corpus/$target artifacts=$build/fuzz-artifacts/$target
mkdir -p "$work" "$artifacts"
dict=()
[ -f "$here/$target.dict" ] && dict=(-dict="$here/$target.dict")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$@" "$work" "$seeds"
