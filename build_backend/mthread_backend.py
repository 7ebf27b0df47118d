"""The project's own PEP 517 build backend: `pip install .` builds the extension with the
project's CMake and packs a wheel, needing nothing from a package index (the machines this is
built on reach none, so pip's isolated build cannot fetch setuptools).

MTHREAD_CMAKE_BUILD_DIR reuses a configured build tree (the Makefile passes its own, so nothing
compiles twice); otherwise a fresh Release tree is configured in build-pip/.
"""
import base64
import hashlib
import os
import pathlib
import subprocess
import sys
import sysconfig
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME, VERSION = "mthread", "0.1.0"
SUMMARY = ("Threads that can be suspended, resumed and killed, with notifications and mailboxes: "
           "the ESP32 MicroPython (LoBo) _thread on CPython")


def get_requires_for_build_wheel(config_settings=None):
    return []


def _wheel_tag():
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{python}-{python}-{platform}"


def _build_extension():
    reused = os.environ.get("MTHREAD_CMAKE_BUILD_DIR")
    build_dir = pathlib.Path(reused) if reused else ROOT / "build-pip"
    if not reused:
        subprocess.check_call([
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}", "-DMTHREAD_BUILD_PYTHON=ON",
            "-DMTHREAD_BUILD_TESTS=OFF", "-DMTHREAD_BUILD_EXAMPLES=OFF",
        ], stdout=sys.stderr)
    subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "_mthread", "-j",
                           str(os.cpu_count() or 2)], stdout=sys.stderr)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return build_dir / "python" / "mthread" / f"_mthread{suffix}"


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    extension = _build_extension()
    package = ROOT / "python" / "mthread"
    files = {f"mthread/{p.name}": p.read_bytes() for p in sorted(package.iterdir())
             if p.suffix in (".py", ".pyi", ".typed")}
    files[f"mthread/{extension.name}"] = extension.read_bytes()
    info = f"{NAME}-{VERSION}.dist-info"
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
                                 f"Summary: {SUMMARY}\nRequires-Python: >=3.11\n").encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: mthread_backend\n"
                              f"Root-Is-Purelib: false\nTag: {_wheel_tag()}\n").encode()
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{NAME}-{VERSION}-{_wheel_tag()}.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / filename, "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return filename
