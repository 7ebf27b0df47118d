#!/usr/bin/env bash
# `make bench`: builds the benchmarks in Release, runs every C++ and Python figure beside its peer
# (repetitions, medians), prints one table and writes it to bench/results/latest.{json,md}.
#
#   bench/run.sh [--smoke] [--no-build] [--build-dir DIR] [--reps N]
#
#   --smoke       run every benchmark program very briefly (for `make test`): checks that they
#                 run and that both sides of each figure agree; writes to DIR/bench-smoke/ and
#                 does not judge the targets. MTHREAD_BENCH_SMOKE=1 does the same.
#   --no-build    use the programs already built in DIR
#   --build-dir   the build tree (default: build-bench beside this folder)
#   --reps        repetitions of each figure (default 7; MTHREAD_BENCH_REPS)
#
# The Python figures are taken on every supported CPython found (in a smoke run, Debian's only):
# Debian's /usr/bin/python3 with the module in DIR, and each of pyenv's ($PYENV_ROOT/versions,
# default ~/.pyenv/versions; one per ABI, none older than pyproject.toml's requires-python) with
# the module built in DIR-<abi> (e.g. build-bench-cp312). MTHREAD_BENCH_PYTHONS="python ..." names
# the others instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build_dir="$root/build-bench"
smoke="${MTHREAD_BENCH_SMOKE:+1}"
do_build=1
reps="${MTHREAD_BENCH_REPS:-7}"
python=/usr/bin/python3  # Debian's, the one the module is built for (not a pyenv python3)

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --no-build) do_build=0 ;;
    --build-dir) build_dir="$(cd "$2" 2>/dev/null && pwd || echo "$2")"; shift ;;
    --reps) reps="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$smoke" ]; then
  export MTHREAD_BENCH_SMOKE=1
  reps=1
  min_time=0.002
  rss_runs=1
  results="$build_dir/bench-smoke"
  out="$results/smoke"
else
  min_time=0.2
  rss_runs=5
  results="$root/bench/results/raw"
  out="$root/bench/results/latest"
fi

if [ "$do_build" = 1 ]; then
  echo "== configuring and building (Release) in $build_dir"
  configure=(cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DMTHREAD_BUILD_BENCH=ON
             -DMTHREAD_WERROR=ON -DPython3_EXECUTABLE="$python")
  if ! "${configure[@]}" -DMTHREAD_BUILD_PYTHON=ON >"$build_dir.configure.log" 2>&1; then
    echo "   (the Python module cannot be configured; see $build_dir.configure.log — C++ only)"
    "${configure[@]}" -DMTHREAD_BUILD_PYTHON=OFF >/dev/null
  fi
  rm -f "$build_dir.configure.log"
  cmake --build "$build_dir" -j "$(nproc)" --target messaging_bench lifecycle_bench scale_bench \
    >/dev/null
  if ! cmake --build "$build_dir" -j "$(nproc)" --target _mthread >/dev/null 2>&1; then
    echo "   (the Python module did not build: Python figures skipped)"
  fi
fi

# The other CPythons: "python build-dir abi" entries; Debian's ABI and repeats left out.
abi_of() {  # abi_of PYTHON: cp312 (with ABI flags), or nothing if older than requires-python
  "$1" - "$minimum" <<'EOF' 2>/dev/null || true
import sys
major, minor = [int(part) for part in sys.argv[1].split(".")]
if sys.implementation.name == "cpython" and sys.version_info[:2] >= (major, minor):
    print("cp%d%d%s" % (sys.version_info[0], sys.version_info[1], sys.abiflags))
EOF
}
other_pythons=()
if [ -z "$smoke" ]; then
  minimum="$(sed -n 's/^requires-python *= *">= *\([0-9]*\.[0-9]*\)".*/\1/p' "$root/pyproject.toml")"
  if [ -n "${MTHREAD_BENCH_PYTHONS:-}" ]; then
    read -r -a candidates <<<"$MTHREAD_BENCH_PYTHONS"
  else
    candidates=()
    while read -r candidate; do
      [ -x "$candidate" ] && candidates+=("$candidate")
    done < <(printf '%s\n' "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 | sort -V)
  fi
  seen=" $(abi_of "$python") "
  for candidate in "${candidates[@]}"; do
    abi="$(abi_of "$candidate")"
    if [ -z "$abi" ]; then
      echo "   (Python figures: skipping $candidate, not a supported CPython)"
    elif [[ "$seen" != *" $abi "* ]]; then
      seen+="$abi "
      other_pythons+=("$candidate $build_dir-$abi $abi")
    fi
  done
fi
if [ "$do_build" = 1 ]; then
  for entry in "${other_pythons[@]}"; do
    read -r other other_dir abi <<<"$entry"
    echo "== building the Python module for $other in $other_dir"
    if ! { cmake -S "$root" -B "$other_dir" -DCMAKE_BUILD_TYPE=Release -DMTHREAD_BUILD_BENCH=OFF \
             -DMTHREAD_WERROR=ON -DMTHREAD_BUILD_PYTHON=ON -DPython3_EXECUTABLE="$other" &&
           cmake --build "$other_dir" -j "$(nproc)" --target _mthread; } >"$other_dir.build.log" 2>&1
    then
      echo "   (it did not build: its figures are skipped; see $other_dir.build.log)"
      continue
    fi
    rm -f "$other_dir.build.log"
  done
fi

bin="$build_dir/bench"
for program in messaging_bench lifecycle_bench scale_bench; do
  if [ ! -x "$bin/$program" ]; then
    echo "bench/run.sh: $bin/$program is not built (configure with -DMTHREAD_BUILD_BENCH=ON)" >&2
    exit 1
  fi
done
rm -rf "$results"
mkdir -p "$results"
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -z "$smoke" ] && awk -v n="$(nproc)" '{exit !($1 > n / 2)}' /proc/loadavg; then
  echo "   (load average $load_at_start on $(nproc) cores: other work competes for the CPUs, and"
  echo "    spinning hand-offs suffer most; the figures below are of a busy machine)"
fi
log="$results/console.log"

gbench=(--benchmark_repetitions="$reps" --benchmark_min_time="$min_time"
        --benchmark_out_format=json)
if [ "$reps" -gt 1 ]; then
  gbench+=(--benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true)
fi

run() {  # run LABEL COMMAND...: output to the log; on failure show it and stop
  echo "== $1"
  shift
  if ! "$@" >>"$log" 2>&1; then
    echo "bench/run.sh: failed: $*" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

run "C++ messaging (round trips, throughput; $reps repetitions)" \
  "$bin/messaging_bench" "${gbench[@]}" --benchmark_out="$results/cpp-messaging.json"
run "C++ lifecycle (start+join, suspend and kill latency; $reps repetitions)" \
  "$bin/lifecycle_bench" "${gbench[@]}" --benchmark_filter='start_join|latency' \
  --benchmark_out="$results/cpp-lifecycle.json"
# RSS is the growth of the whole process: each measurement in a fresh process.
echo "== C++ RSS per idle thread ($rss_runs fresh processes each)"
for i in $(seq "$rss_runs"); do
  for kind in mthread std; do
    run "   rss $kind $i" "$bin/lifecycle_bench" --benchmark_filter="^rss_idle_$kind/" \
      --benchmark_out_format=json --benchmark_out="$results/cpp-rss-$kind-$i.json" >/dev/null
  done
done

py_module=$(ls "$build_dir"/python/mthread/_mthread*.so 2>/dev/null | head -n 1 || true)
if [ -n "$py_module" ]; then
  py_args=(--json "$results/python.json" --reps "$reps" --rss-runs "$rss_runs")
  [ -n "$smoke" ] && py_args+=(--smoke)
  run "Python ($python, $reps repetitions)" \
    env PYTHONPATH="$build_dir/python" "$python" "$here/python_bench.py" "${py_args[@]}"
else
  echo "== Python: no module in $build_dir/python (configure with -DMTHREAD_BUILD_PYTHON=ON)"
fi
for entry in "${other_pythons[@]}"; do
  read -r other other_dir abi <<<"$entry"
  if ! ls "$other_dir"/python/mthread/_mthread*.so >/dev/null 2>&1; then
    echo "== Python: no module for $other in $other_dir/python"
    continue
  fi
  run "Python ($other, $reps repetitions)" \
    env PYTHONPATH="$other_dir/python" "$other" "$here/python_bench.py" \
    --json "$results/python-$abi.json" --reps "$reps" --rss-runs "$rss_runs"
done

# Scale: each operation's cost per thread at N = 10 .. 10000 threads beside the peer, and
# broadcasts to 1000 and 4000 threads; a table and a plot (bench/plot_scale.py).
scale_reps="${MTHREAD_BENCH_SCALE_REPS:-3}"
scale_ns=10,100,1000,10000
scale_out="$root/bench/results/scale"
if [ -n "$smoke" ]; then
  scale_reps=1
  scale_ns=5,20
  scale_out="$results/scale"
fi
run "C++ scale (N = $scale_ns; $scale_reps runs)" \
  "$bin/scale_bench" --ns "$scale_ns" --reps "$scale_reps" --json "$results/scale-cpp.json"
if [ -n "$py_module" ]; then
  scale_args=(--ns "$scale_ns" --reps "$scale_reps" --json "$results/scale-python.json")
  [ -n "$smoke" ] && scale_args+=(--smoke)
  run "Python scale (N = $scale_ns, broadcasts; $scale_reps runs)" \
    env PYTHONPATH="$build_dir/python" "$python" "$here/scale.py" "${scale_args[@]}"
fi
"$python" "$here/plot_scale.py" --cpp "$results/scale-cpp.json" \
  --python "$results/scale-python.json" --md "$scale_out.md" --png "$scale_out.png" \
  >"$results/scale-table.txt"

echo
report=("$python" "$here/report.py" "$results" --out "$out"
        --note "load average at the start: $load_at_start")
if [ -n "$smoke" ]; then
  report+=(--smoke --note "smoke run: workloads too small for the figures to mean anything")
  "${report[@]}" >"$results/table.txt"
  echo "bench smoke run: every benchmark program ran; table in $results/table.txt"
else
  "${report[@]}"
  echo
  cat "$results/scale-table.txt"
  echo
  echo "written: bench/results/latest.json, bench/results/latest.md, bench/results/scale.{md,png}"
fi
