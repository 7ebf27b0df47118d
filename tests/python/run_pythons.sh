#!/usr/bin/env bash
# `make test-pythons`: the whole Python suite (tests/python) on every supported CPython on this
# machine, each with mthread installed the way a user installs it — `pip install --no-index
# --no-deps .` from this checkout — into a venv of its own.
#
#   tests/python/run_pythons.sh [--setup-only] [--dir DIR] [PYTHON...] [-- PYTEST_ARGS...]
#
#   PYTHON...     the interpreters (default, or MTHREAD_PYTHONS="python ..."): Debian's
#                 /usr/bin/python3, then every CPython of pyenv ($PYENV_ROOT/versions, default
#                 ~/.pyenv/versions). One per ABI (cp311, cp312, cp313t, ...): the first found
#                 wins; older than pyproject.toml's requires-python are skipped with a note.
#   --dir DIR     where everything goes (default build/pythons; MTHREAD_PYTHONS_DIR):
#                 DIR/<abi>/venv, DIR/<abi>/{install,pytest}.log, DIR/<abi>/junit.xml
#   --setup-only  make or update the venvs (mthread and the test packages installed) and run
#                 nothing; print each venv's python, one absolute path a line, on stdout
#                 (everything else goes to stderr); non-zero exit if one could not be set up
#                 (the others are still printed). The bench gets its interpreters this way.
#                 Each run reinstalls from the checkout as it is now: a second one only
#                 recompiles what changed (a few seconds an interpreter).
#   -- ARGS       pytest arguments instead of the whole suite, e.g. -- tests/python/test_start.py
#   MTHREAD_PYTHONS_TIMEOUT  seconds one interpreter's run may take (default 1200)
#
# Prints one line per interpreter (passed, failed, skipped, times); exits non-zero when one
# failed to build or to pass.
#
# The test packages: there is no package index, so the venvs get Debian's pure-Python
# python3-pytest, -pytest-timeout, -hypothesis and -pexpect and what they depend on, found from
# the packages' own Depends and file lists: DIR/debian-pure/ holds symlinks to just their files
# in /usr/lib/python3/dist-packages (which also has extensions built for Debian's 3.11 only, so
# it is never put on another interpreter's path whole), and a .pth file in each venv's
# site-packages appends that folder to sys.path. Byte code of other versions goes to
# DIR/<abi>/pycache (PYTHONPYCACHEPREFIX), not into Debian's folders.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${MTHREAD_PYTHONS_DIR:-$root/build/pythons}"
setup_only=0
pythons=()
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --setup-only) setup_only=1 ;;
    --dir) dir="$2"; shift ;;
    --) shift; pytest_args=("$@"); break ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_pythons.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    *) pythons+=("$1") ;;
  esac
  shift
done
[ ${#pytest_args[@]} -gt 0 ] || pytest_args=(tests/python)
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

note() { echo "$@" >&2; }

if [ ${#pythons[@]} -eq 0 ]; then
  if [ -n "${MTHREAD_PYTHONS:-}" ]; then
    read -r -a pythons <<<"$MTHREAD_PYTHONS"
  else
    [ -x /usr/bin/python3 ] && pythons+=(/usr/bin/python3)
    pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    while read -r candidate; do
      [ -x "$candidate" ] && pythons+=("$candidate")
    done < <(printf '%s\n' "$pyenv_root"/versions/*/bin/python3 | sort -V)
  fi
fi

# The oldest supported version, from the one place that states it.
minimum="$(sed -n 's/^requires-python *= *">= *\([0-9]*\.[0-9]*\)".*/\1/p' "$root/pyproject.toml")"
[ -n "$minimum" ] || { note "run_pythons.sh: no requires-python in pyproject.toml"; exit 2; }

# Each interpreter's ABI tag (as the wheel's), version and version check, in one call.
describe() {
  "$1" - "$minimum" <<'EOF' 2>/dev/null
import sys
# (No f-strings: this must run on old interpreters too, to name them.)
major, minor = [int(part) for part in sys.argv[1].split(".")]
implementation = getattr(sys, "implementation", None)
supported = (implementation is not None and implementation.name == "cpython" and
             sys.version_info[:2] >= (major, minor))
abi = "cp%d%d%s" % (sys.version_info[0], sys.version_info[1], getattr(sys, "abiflags", ""))
print("%s %d.%d.%d %s" % ((abi,) + tuple(sys.version_info[:3]) + ("yes" if supported else "no",)))
EOF
}

# DIR/debian-pure: symlinks to the files of the test packages and their dependencies.
make_test_packages() {
  /usr/bin/python3 - "$dir/debian-pure" <<'EOF'
import os, re, shutil, subprocess, sys

WANTED = ["python3-pytest", "python3-pytest-timeout", "python3-hypothesis", "python3-pexpect"]
SITE = "/usr/lib/python3/dist-packages/"
target = sys.argv[1]

def query(fmt, package):
    done = subprocess.run(["dpkg-query", "-W", "-f", fmt, package], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""

def installed(package):
    return query("${Status}", package).endswith(" installed")

def dependencies(package):
    """The python3-* packages it needs on 3.11 and later. A group that the interpreter itself
    satisfies ("python3-tomli | python3 (>> 3.11)") is for older Pythons only."""
    for group in query("${Depends}", package).split(","):
        names = [re.sub(r"[\s(:].*", "", alt.strip()) for alt in group.split("|")]
        if "python3" in names:
            continue
        chosen = [name for name in names if name.startswith("python3-") and installed(name)]
        if chosen:
            yield chosen[0]
        elif any(name.startswith("python3-") for name in names):
            sys.exit(f"run_pythons.sh: {package} needs {group.strip()}, not installed "
                     f"(make deps installs the test packages)")

missing = [package for package in WANTED if not installed(package)]
if missing:
    sys.exit(f"run_pythons.sh: not installed: {' '.join(missing)} (make deps installs them)")
packages, todo = set(), list(WANTED)
while todo:
    package = todo.pop()
    if package not in packages:
        packages.add(package)
        todo.extend(dependencies(package))

entries = set()
for package in sorted(packages):
    files = [line for line in query("${db-fsys:Files}", package).split("\n")
             if line.strip().startswith(SITE)]
    if not files:  # older dpkg-query: no db-fsys:Files
        files = subprocess.run(["dpkg", "-L", package], capture_output=True,
                               text=True).stdout.split("\n")
    files = [line.strip() for line in files if line.strip().startswith(SITE)]
    compiled = [path for path in files if path.endswith(".so")]
    if compiled:
        sys.exit(f"run_pythons.sh: {package} is not pure Python ({compiled[0]}): it cannot go "
                 f"on another interpreter's path")
    entries.update(path[len(SITE):].split("/")[0] for path in files)
entries.discard("__pycache__")

shutil.rmtree(target, ignore_errors=True)
os.makedirs(target)
for entry in sorted(entries):
    os.symlink(SITE + entry, os.path.join(target, entry))
print(f"test packages: {' '.join(sorted(packages))}", file=sys.stderr)
EOF
}

# Makes DIR/<abi>/venv for $1 (again if it belongs to another installation), installs mthread
# with pip from this checkout and points it at the test packages. Returns non-zero on failure.
setup_venv() {
  local python="$1" abi="$2" venv="$dir/$2/venv"
  local base
  base="$("$python" -c 'import os, sys; print(os.path.realpath(sys.base_prefix))')"
  if ! [ -x "$venv/bin/python" ] ||
     [ "$("$venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys.base_prefix))' \
          2>/dev/null)" != "$base" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv" || return 1
  fi
  local site
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  echo "$dir/debian-pure" >"$site/mthread-test-packages.pth"
  # pip's own build tree for this interpreter (build-pip/<abi>-...), never a tree named by
  # the caller's environment: that one was configured for some other Python.
  (cd "$root" && env -u MTHREAD_CMAKE_BUILD_DIR -u PYTHONPATH "$venv/bin/python" -m pip install \
     -v --no-index --no-deps --force-reinstall --disable-pip-version-check . \
     >"$dir/$abi/install.log" 2>&1)
}

# Builds everything first, then tests: a build failure shows before a long test run.
make_test_packages
declare -A seen=()
abis=()      # in the order found
ready=()     # "abi python version build-seconds" for each venv that is set up
declare -A summary=()  # abi -> its line
failures=0
for python in "${pythons[@]}"; do
  if ! description="$(describe "$python")" || [ -z "$description" ]; then
    note "skipped $python: does not run"
    continue
  fi
  read -r abi version supported <<<"$description"
  if [ "$supported" != yes ]; then
    note "skipped $python ($version): mthread needs CPython $minimum or newer"
    continue
  fi
  if [ -n "${seen[$abi]:-}" ]; then
    note "skipped $python ($version): $abi is already tested with ${seen[$abi]}"
    continue
  fi
  seen[$abi]="$python"
  abis+=("$abi")
  mkdir -p "$dir/$abi"
  note "== $abi: $python ($version): pip install . (log: $dir/$abi/install.log)"
  start=$SECONDS
  if setup_venv "$python" "$abi"; then
    # The compiler's warnings (file:line:col: warning:), which `make test` turns into errors.
    warnings="$(grep -cE ':[0-9]+:[0-9]+: warning:' "$dir/$abi/install.log" || true)"
    if [ "$warnings" = 0 ]; then
      note "   built and installed in $((SECONDS - start)) s"
    else
      note "   built and installed in $((SECONDS - start)) s, with $warnings compiler warnings:"
      grep -m 5 -E ':[0-9]+:[0-9]+: warning:' "$dir/$abi/install.log" | sed 's/^ */   | /' >&2
    fi
    ready+=("$abi $python $version $((SECONDS - start))")
  else
    note "   FAILED to build or install; from $dir/$abi/install.log:"
    { grep -m 10 -E ': (fatal )?error:|^(CMake Error| *mthread)' "$dir/$abi/install.log" ||
        tail -n 15 "$dir/$abi/install.log"; } | sed 's/^ */   | /' >&2
    summary[$abi]="$abi $version: pip install . FAILED (see $dir/$abi/install.log) [$python]"
    failures=$((failures + 1))
  fi
done
[ ${#abis[@]} -gt 0 ] ||
  { note "run_pythons.sh: no supported CPython found"; exit 1; }

if [ "$setup_only" = 1 ]; then
  for entry in "${ready[@]}"; do
    read -r abi _ <<<"$entry"
    echo "$dir/$abi/venv/bin/python"
  done
  [ "$failures" = 0 ]
  exit
fi

for entry in "${ready[@]}"; do
  read -r abi python version build_seconds <<<"$entry"
  venv_python="$dir/$abi/venv/bin/python"
  note "== $abi: $python ($version): pytest ${pytest_args[*]} (log: $dir/$abi/pytest.log)"
  rm -f "$dir/$abi/junit.xml"
  start=$SECONDS
  status=0
  # The suite's own timeouts end a stuck test after 120 s (pytest-timeout's signal, which a
  # thread stuck in C never sees); the outer one ends a stuck run, faulthandler (on in
  # pytest) writing every thread's stack to the log. A whole run takes 3-7 minutes.
  # Debian's pytest 7.2 uses ast names that 3.12 deprecates: its own warnings are not ours.
  (cd "$root" && env -u PYTHONPATH PYTHONPYCACHEPREFIX="$dir/$abi/pycache" \
     MTHREAD_TEST_PYTHON="$venv_python" timeout --signal=ABRT "${MTHREAD_PYTHONS_TIMEOUT:-1200}" \
     "$venv_python" -m pytest -q -p no:cacheprovider --timeout=120 \
     -W ignore::DeprecationWarning:_pytest.assertion.rewrite \
     --junitxml="$dir/$abi/junit.xml" "${pytest_args[@]}" >"$dir/$abi/pytest.log" 2>&1) ||
    status=$?
  seconds=$((SECONDS - start))
  counts="$(/usr/bin/python3 - "$dir/$abi/junit.xml" <<'EOF' 2>/dev/null || echo "no results"
import sys, xml.etree.ElementTree as tree
root = tree.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
total = {key: sum(int(suite.get(key, 0)) for suite in suites)
         for key in ("tests", "failures", "errors", "skipped")}
passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
line = f"{passed} passed, {total['failures']} failed"
if total["errors"]:
    line += f", {total['errors']} errors"
if total["skipped"]:
    line += f", {total['skipped']} skipped"
print(line)
EOF
)"
  if [ "$counts" = "no results" ]; then
    # Stopped: name the test the main thread was in, from faulthandler's dump.
    hung="$(awk '/^(Current thread|Thread 0x)/ { main = /^Current/ } main && /tests\/python\/test_/ {
                   sub(/.*tests\/python\//, ""); gsub(/", line [0-9]+ in /, "::"); print; exit }' \
            "$dir/$abi/pytest.log")"
    counts="stopped, no results${hung:+ (hung in ${hung})}"
  fi
  line="$abi $version: $counts in $seconds s (pip install $build_seconds s) [$python]"
  if [ "$status" != 0 ]; then
    line="$line: FAILED (pytest exit $status)"
    grep -E '^(FAILED|ERROR) ' "$dir/$abi/pytest.log" | sed 's/^/   /' >&2 || true
    failures=$((failures + 1))
  fi
  summary[$abi]="$line"
  note "   $line"
done

echo
echo "== make test-pythons: one line per interpreter"
for abi in "${abis[@]}"; do echo "${summary[$abi]}"; done
[ "$failures" = 0 ]
