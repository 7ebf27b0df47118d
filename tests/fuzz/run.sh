#!/usr/bin/env bash
# Builds the libFuzzer harness (clang, ASan + UBSan over the whole core) in build-fuzz and runs it
# for SECONDS seconds (default 60) from the committed seed corpus. New inputs go to
# build-fuzz/corpus, crashes and hangs to build-fuzz/artifacts/; either fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
JOBS=${JOBS:-2}
SAN="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTHREAD_WERROR=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -fno-omit-frame-pointer" "-DCMAKE_CXX_FLAGS=$SAN" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
  -DMTHREAD_BUILD_TESTS=OFF -DMTHREAD_BUILD_EXAMPLES=OFF -DMTHREAD_BUILD_PYTHON=OFF \
  -DMTHREAD_BUILD_RELIABILITY=ON -DMTHREAD_BUILD_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$JOBS" --target mthread_fuzz_ops
mkdir -p build-fuzz/corpus build-fuzz/artifacts
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
# -timeout: one input running longer than 30 s is a hang (an input lasts milliseconds).
# -rss_limit_mb: ASan's quarantine and the threads' stacks; well below it unless something leaks.
set +e
build-fuzz/tests/reliability/fuzz/mthread_fuzz_ops -max_total_time="$SECONDS_TO_RUN" \
  -timeout=30 -rss_limit_mb=4096 -max_len=2048 -print_final_stats=1 \
  -artifact_prefix=build-fuzz/artifacts/ build-fuzz/corpus tests/fuzz/corpus \
  >build-fuzz/last-run.log 2>&1
status=$?
set -e
grep -E "^#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss" build-fuzz/last-run.log || true
if [ "$status" -ne 0 ] || ls build-fuzz/artifacts/* >/dev/null 2>&1; then
  echo "fuzz: FAILED (exit $status); see build-fuzz/last-run.log and build-fuzz/artifacts/" >&2
  tail -60 build-fuzz/last-run.log >&2
  exit 1
fi
echo "fuzz: $(grep -o 'stat::number_of_executed_units: [0-9]*' build-fuzz/last-run.log | grep -o '[0-9]*$') inputs run in ${SECONDS_TO_RUN} s, no crash, hang, leak or sanitizer report"
