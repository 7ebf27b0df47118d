"""Packaging: the wheel `pip install .` builds carries a tag this interpreter installs, and an
interpreter older than the minimum is turned away with one line naming it, by the build backend
(`pip install .`) and by CMake alike. The minimum and the version are read where they are stated,
pyproject.toml."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest
from packaging import tags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKEND = os.path.join(ROOT, "build_backend")


def minimum():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', f.read(), re.MULTILINE)
    assert found, "pyproject.toml states no requires-python"
    return int(found.group(1)), int(found.group(2))


def backend_call(python, expression):
    """Evaluate ``expression`` on the backend module in a fresh ``python``."""
    code = (f"import sys; sys.path.insert(0, {BACKEND!r}); import mthread_backend; "
            f"print({expression})")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def older_cpythons():
    """CPythons on this machine older than the minimum (pyenv's, /usr/bin's), newest first."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = {}
    for path in glob.glob(f"{pyenv}/versions/3.*/bin/python3") + glob.glob("/usr/bin/python3.*"):
        version = re.search(r"3\.(\d+)", path)
        if version and (3, int(version.group(1))) < minimum() and os.access(path, os.X_OK):
            found.setdefault(int(version.group(1)), path)
    return [found[minor] for minor in sorted(found, reverse=True)]


def test_the_version_is_pyprojects_everywhere():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        found = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.MULTILINE)
    assert found, "pyproject.toml states no version"
    import mthread
    assert mthread.__version__ == found.group(1)
    wheel_version = backend_call(sys.executable, "mthread_backend._version()")
    assert wheel_version.stdout.strip() == found.group(1), wheel_version.stderr


def test_wheel_tag_is_this_interpreters_own():
    result = backend_call(sys.executable, "mthread_backend._wheel_tag()")
    assert result.returncode == 0, result.stderr
    (tag,) = tags.parse_tag(result.stdout.strip())
    # One pip accepts for this interpreter, and the most specific kind: CPython's version and
    # ABI flags (free-threaded, debug), not abi3 or none.
    assert tag in set(tags.sys_tags())
    version = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert (tag.interpreter, tag.abi) == (version, version + sys.abiflags)


def test_backend_turns_an_older_cpython_away_with_one_line():
    old = older_cpythons()
    if not old:
        pytest.skip(f"no CPython older than {minimum()} on this machine")
    result = backend_call(old[0], "mthread_backend.get_requires_for_build_wheel()")
    running = backend_call(old[0], "'%d.%d.%d' % sys.version_info[:3]").stdout.strip()
    assert result.returncode == 1
    assert result.stderr == (f"mthread needs CPython {minimum()[0]}.{minimum()[1]} or newer; "
                             f"{old[0]} is {running}\n")


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")
def test_cmake_turns_an_older_cpython_away_with_one_line(tmp_path):
    old = older_cpythons()
    if not old:
        pytest.skip(f"no CPython older than {minimum()} on this machine")
    result = subprocess.run(
        ["cmake", "-S", ROOT, "-B", str(tmp_path), f"-DPython3_EXECUTABLE={old[0]}",
         "-DMTHREAD_BUILD_TESTS=OFF", "-DMTHREAD_BUILD_EXAMPLES=OFF", "-DMTHREAD_BUILD_PYTHON=ON"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = [line.strip() for line in result.stderr.splitlines()
             if "mthread needs CPython" in line]
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(rf"mthread needs CPython {minimum()[0]}\.{minimum()[1]} or newer; "
                        rf"{re.escape(old[0])} is 3\.\d+\.\d+", lines[0]), lines[0]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")
def test_a_build_tree_follows_a_new_version_in_pyproject(tmp_path):
    """A version bumped in pyproject.toml reaches mthread.__version__ at the next build of an
    existing tree (as the Makefile's pip install reuses it), without configuring by hand."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "build-*", "__pycache__", "bench", "tests", "examples"))
    build = tmp_path / "build"
    configure = subprocess.run(
        ["cmake", "-S", str(source), "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}",
         "-DMTHREAD_BUILD_TESTS=OFF", "-DMTHREAD_BUILD_EXAMPLES=OFF", "-DMTHREAD_BUILD_BENCH=OFF",
         "-DMTHREAD_BUILD_PYTHON=ON"], capture_output=True, text=True, timeout=300)
    assert configure.returncode == 0, configure.stderr
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(re.sub(r'^version\s*=\s*"[^"]+"', 'version = "9.8.7"', text,
                                flags=re.MULTILINE), encoding="utf-8")
    rebuild = subprocess.run(["cmake", "--build", str(build), "--target", "mthread_python_package"],
                             capture_output=True, text=True, timeout=300)
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    written = (build / "python" / "mthread" / "_version.py").read_text(encoding="utf-8")
    assert '__version__ = "9.8.7"' in written
