#!/usr/bin/env bash
# Runs mthread's tests under the sanitizers:
#   asan    the C++ suite and the reliability tests under AddressSanitizer + UBSan (build-asan)
#   python  the Python suite against an ASan + UBSan build of the extension (build-asan)
#   tsan    the C++ suite and the reliability tests under ThreadSanitizer (build-tsan)
# With no argument, all three. Any sanitizer report fails the run (halt_on_error, exit codes).
# Exclusions and suppressions are listed below, each with its reason; there are no others.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-/usr/bin/python3}
JOBS=${JOBS:-2}
SOAK_SECONDS=${SOAK_SECONDS:-15}
STEPS=${*:-asan python tsan}

# -O1: sanitizer builds are for finding bugs, and the suite compiles twice as fast as at -O2.
# -Wno-maybe-uninitialized: GCC 12 warns falsely inside libstdc++'s <regex> and <functional>
# once ASan instruments them (the same code is clean without -fsanitize); -Werror stays on.
COMMON_FLAGS="-O1 -g -fno-omit-frame-pointer -Wno-maybe-uninitialized"

configure() {  # dir, sanitizer flags, extra cmake args...
  local dir=$1 flags=$2
  shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTHREAD_WERROR=ON \
    -DPython3_EXECUTABLE="$PYTHON" -DMTHREAD_BUILD_EXAMPLES=OFF -DMTHREAD_BUILD_RELIABILITY=ON \
    -DMTHREAD_SOAK_SECONDS="$SOAK_SECONDS" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$COMMON_FLAGS" "-DCMAKE_CXX_FLAGS=$flags" \
    "-DCMAKE_EXE_LINKER_FLAGS=$flags" "-DCMAKE_SHARED_LINKER_FLAGS=$flags" \
    "-DCMAKE_MODULE_LINKER_FLAGS=$flags" "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

# Tests left out of every sanitizer run:
# - consumer.*: they build the library again with the plain compiler to check the CMake
#   packaging; there is nothing instrumented in them.
# - LimitChild.*: disabled helpers that limit_test.cpp runs in a child process itself.
ALWAYS_EXCLUDED='^(consumer\.|LimitChild\.)'

# Left out under ASan only: these assert that RSS and the count of mappings come back to where
# they were after thousands of thread starts. ASan keeps freed memory in its quarantine (256 MiB)
# and maps its allocator's size classes lazily, so RSS and mappings grow by design under it.
# They run in the plain build (make test); everything else they do (start, kill, join under
# churn) is covered under ASan by reliability.soak and reliability.faults.
ASAN_EXCLUDED='^Churn\.(StartKillCyclesLeaveNoTrace|StartEndCyclesLeaveNoTrace|ManyConcurrentThreadsComeAndGo|MixedStackSizesOverflowTheCacheWithoutLeaking)$'

# Left out under TSan only:
# - tests that start threads on stacks below 1 MiB (the minimum is 128 KiB): TSan keeps about
#   900 KiB of its own per-thread state at the top of a thread's stack and makes
#   pthread_create fail for a smaller one ("pre-allocated stack size is insufficient");
# - the stack death tests: TSan turns every SIGSEGV into its own report and exit code 66;
# - the Churn tests that check RSS and mappings after many concurrent threads: TSan's shadow
#   memory and per-thread state grow with them;
# - the test of a forked child that starts threads: TSan does not support threads started after
#   a fork of a process with threads.
# Their threading logic runs under TSan in every other test, the soak and the fault tests.
TSAN_EXCLUDED='^(Stack\.(ThreadsStartedAfterGetTheNewDefault|MaxStackUsedIsTheHighWaterMarkWithinAPage|NearlyTheWholeStackIsUsable|AReusedStackMeasuresAfresh|HighWaterMarkSeenWhileTheThreadRunsAndStaysAfterItReturns|UntouchedStackPagesAreNotResident)|StackDeathTest\..*|Churn\.(ManyConcurrentThreadsComeAndGo|MixedStackSizesOverflowTheCacheWithoutLeaking)|Start\.OptionsSetStackSizeAndMailboxDepth|Reaper\.AFork.*)$'

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:report_error_type=1

run_asan() {
  echo "== ASan + UBSan: C++ suite and reliability tests (build-asan)"
  configure build-asan "-fsanitize=address,undefined -fno-sanitize-recover=all"
  # Leak checking on: every test process must free all it allocated.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_invalid_pointer_pairs=0 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" --timeout 300 \
    -E "$ALWAYS_EXCLUDED|$ASAN_EXCLUDED|^python\."
}

run_python() {
  echo "== ASan + UBSan: Python suite against an instrumented extension (build-asan)"
  [ -f build-asan/CMakeCache.txt ] || configure build-asan "-fsanitize=address,undefined -fno-sanitize-recover=all"
  cmake --build build-asan -j "$JOBS" --target _mthread
  # CPython is not instrumented, so the ASan runtime has to be in the process before it starts.
  # libstdc++ is preloaded too: ASan looks up the real __cxa_throw once, at start; without
  # libstdc++ already loaded it finds none and aborts at the first C++ throw.
  local preload
  preload="$(gcc -print-file-name=libasan.so) $(readlink -f "$(gcc -print-file-name=libstdc++.so)")"
  # PYTHONMALLOC=malloc: objects come from malloc, so ASan sees every Python allocation too.
  # detect_leaks=0: CPython does not free its interned strings, static types and module state at
  # exit (by design: https://docs.python.org/3/c-api/init.html#c.Py_FinalizeEx), so a leak
  # check of the interpreter reports thousands of blocks that are not ours. Leaks of the core
  # are checked by the C++ runs above (detect_leaks=1) and by the soak's resource ledger.
  # The sanitizer variables reach every subprocess the tests start.
  # test_properties runs its properties twice, the second time in a child with twice the
  # examples to catch hard crashes; under ASan (5x slower) that alone would pass ctest's 300 s,
  # and ASan reports a hard crash in-process anyway: the in-process half runs here.
  export MTHREAD_SANITIZER=address LD_PRELOAD="$preload" PYTHONMALLOC=malloc \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -R '^python\.' -E '^python\.test_properties$'
  PYTHONPATH=build-asan/python MTHREAD_TEST_PYTHON="$PYTHON" "$PYTHON" -m pytest -q \
    -p no:cacheprovider --timeout=300 tests/python/test_properties.py -k "not in_a_subprocess"
  unset MTHREAD_SANITIZER LD_PRELOAD PYTHONMALLOC ASAN_OPTIONS
}

run_tsan() {
  echo "== TSan: C++ suite and reliability tests (build-tsan)"
  configure build-tsan "-fsanitize=thread" -DMTHREAD_BUILD_PYTHON=OFF
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/reliability/tsan.supp" \
    ctest --test-dir build-tsan --output-on-failure -j "$JOBS" --timeout 300 \
    -E "$ALWAYS_EXCLUDED|$TSAN_EXCLUDED|^python\."
}

for step in $STEPS; do
  case $step in
    asan) run_asan ;;
    python) run_python ;;
    tsan) run_tsan ;;
    *) echo "unknown step $step (asan, python, tsan)" >&2; exit 2 ;;
  esac
done
echo "sanitize: all clean ($STEPS)"
