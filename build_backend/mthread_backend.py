"""The project's own PEP 517 build backend: `pip install .` builds the extension with the
project's CMake and packs a wheel, needing nothing from a package index (the machines this is
built on reach none, so pip's isolated build cannot fetch setuptools).

Each interpreter builds in a tree of its own, build-pip/<abi>-<interpreter>/ (for example
build-pip/cp312-3f9c01ab/), so installing into several CPythons from one checkout, one after the
other, never reuses another interpreter's CMake cache; a second `pip install .` with the same
interpreter recompiles only what changed.

MTHREAD_CMAKE_BUILD_DIR reuses a tree already configured for this interpreter instead (the
Makefile passes its own, so nothing compiles twice).

The version and the oldest supported CPython are pyproject.toml's version and requires-python
(CMake reads them from there too); an older CPython stops here with one line naming the minimum,
before anything is configured.
"""
import base64
import hashlib
import os
import pathlib
import re
import subprocess
import sys
import sysconfig
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME = "mthread"
SUMMARY = ("Threads that can be suspended, resumed and killed, with notifications and mailboxes: "
           "the ESP32 MicroPython (LoBo) _thread on CPython")


def _pyproject_value(key, value_pattern, expected):
    """The match of `key = "<value_pattern>"` in pyproject.toml. Read with a pattern, not
    tomllib: the interpreters this must turn away (3.10 and older) have no tomllib."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(rf'^{key}\s*=\s*"{value_pattern}"', text, re.MULTILINE)
    if not found:
        raise SystemExit(f'pyproject.toml: {key} must read "{expected}"')
    return found


def _minimum_python():
    """(major, minor) from pyproject.toml's `requires-python = ">=X.Y"`."""
    found = _pyproject_value("requires-python", r">=\s*(\d+)\.(\d+)", ">=X.Y")
    return int(found.group(1)), int(found.group(2))


def _version():
    return _pyproject_value("version", r"(\d+\.\d+\.\d+)", "X.Y.Z").group(1)


def _require_supported_python():
    major, minor = _minimum_python()
    running = ".".join(str(part) for part in sys.version_info[:3])
    if sys.implementation.name != "cpython":
        raise SystemExit(f"mthread needs CPython {major}.{minor} or newer; {sys.executable} is "
                         f"{sys.implementation.name} {running}")
    if sys.version_info[:2] < (major, minor):
        raise SystemExit(f"mthread needs CPython {major}.{minor} or newer; {sys.executable} is "
                         f"{running}")


def _abi_tag():
    """cp312, or with the build's ABI flags: cp313t for a free-threaded build, cp313d for a
    debug one (the flags are part of the extension's ABI, so of the wheel's tag)."""
    return f"cp{sys.version_info.major}{sys.version_info.minor}{sys.abiflags}"


def _wheel_tag():
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{python}-{_abi_tag()}-{platform}"


def get_requires_for_build_wheel(config_settings=None):
    _require_supported_python()
    return []


def _own_build_dir():
    """build-pip/<abi>-<interpreter>: two installations of one CPython version (Debian's 3.11
    and pyenv's, say) have different headers and libraries, so the installation's prefix is
    part of the name; venvs of one installation share it."""
    installation = os.path.realpath(sys.base_prefix).encode()
    return ROOT / "build-pip" / f"{_abi_tag()}-{hashlib.sha256(installation).hexdigest()[:8]}"


def _build_extension():
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    reused = os.environ.get("MTHREAD_CMAKE_BUILD_DIR")
    if reused:
        build_dir = pathlib.Path(reused)
    else:
        build_dir = _own_build_dir()
        print(f"mthread: building for {sys.executable} in {build_dir}", file=sys.stderr)
        # Configuring again is quick when nothing changed, and points the tree at this very
        # interpreter (a venv of the same installation may have called last time).
        subprocess.check_call([
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}", "-DMTHREAD_BUILD_PYTHON=ON",
            "-DMTHREAD_BUILD_TESTS=OFF", "-DMTHREAD_BUILD_EXAMPLES=OFF",
        ], stdout=sys.stderr)
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
    subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "_mthread", "-j", jobs],
                          stdout=sys.stderr)
    extension = build_dir / "python" / "mthread" / f"_mthread{suffix}"
    if not extension.is_file():
        raise SystemExit(f"mthread: {build_dir} built no {extension.name}: "
                         f"MTHREAD_CMAKE_BUILD_DIR names a tree configured for another Python "
                         f"than {sys.executable}; unset it to build in a tree of this one's own")
    return extension


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _require_supported_python()
    extension = _build_extension()
    package = ROOT / "python" / "mthread"
    files = {f"mthread/{p.name}": p.read_bytes() for p in sorted(package.iterdir())
             if p.suffix in (".py", ".pyi", ".typed")}
    # Both made by CMake: the extension, and beside it _version.py (pyproject.toml's version).
    for built in (extension, extension.parent / "_version.py"):
        files[f"mthread/{built.name}"] = built.read_bytes()
    version = _version()
    info = f"{NAME}-{version}.dist-info"
    major, minor = _minimum_python()
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n"
                                 f"Summary: {SUMMARY}\n"
                                 f"Requires-Python: >={major}.{minor}\n").encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: mthread_backend\n"
                              f"Root-Is-Purelib: false\nTag: {_wheel_tag()}\n").encode()
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{NAME}-{version}-{_wheel_tag()}.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / filename, "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return filename
