"""Builds the extension module through the project's CMake (see pyproject.toml).

MTHREAD_CMAKE_BUILD_DIR reuses an existing build tree (the Makefile passes its own), so
`make` never compiles the project twice.
"""
import os
import pathlib
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        reused = os.environ.get("MTHREAD_CMAKE_BUILD_DIR")
        if reused:
            build_dir = pathlib.Path(reused)  # configured already, for the same interpreter
        else:
            build_dir = pathlib.Path(self.build_temp).resolve() / "cmake"
            subprocess.check_call([
                "cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                f"-DPython3_EXECUTABLE={sys.executable}", "-DMTHREAD_BUILD_PYTHON=ON",
                "-DMTHREAD_BUILD_TESTS=OFF", "-DMTHREAD_BUILD_EXAMPLES=OFF",
            ])
        subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "_mthread",
                               "-j", str(os.cpu_count() or 2)])
        built = next((build_dir / "python" / "mthread").glob("_mthread*.so"))
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(built), str(target))


setup(ext_modules=[Extension("mthread._mthread", sources=[])], cmdclass={"build_ext": CMakeBuild})
