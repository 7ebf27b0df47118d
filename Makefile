# Everything a user or CI needs: `make test`, `make demo`, `make bench`.
# Each target installs what is missing (Debian packages), configures, builds, then runs.
PYTHON      ?= /usr/bin/python3
BUILD       ?= build
BUILD_TYPE  ?= RelWithDebInfo
JOBS        ?= $(shell nproc)
VENV        := .venv
DEBIAN_PACKAGES := build-essential cmake git libgtest-dev libgmock-dev libbenchmark-dev \
  pybind11-dev python3-dev python3-venv python3-pip python3-setuptools python3-wheel \
  python3-pytest python3-pytest-timeout python3-hypothesis python3-pexpect clang-format \
  python3-matplotlib

.PHONY: all deps build venv test test-pythons demo bench format clean

# $(call install_missing,PACKAGES): installs those of the Debian PACKAGES that are missing;
# apt-get update runs only when something is.
define install_missing
@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

all: build

deps:
	$(call install_missing,$(DEBIAN_PACKAGES))

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DMTHREAD_WERROR=ON \
	  -DMTHREAD_BUILD_BENCH=ON -DPython3_EXECUTABLE=$(PYTHON)
	cmake --build $(BUILD) -j $(JOBS)

# A virtual environment on Debian's python3 with the mthread package installed, built by
# pip through the project's CMake and its own build backend (reusing the build tree above, so
# nothing compiles twice; no package index needed).
venv: build
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv --system-site-packages $(VENV)
	MTHREAD_CMAKE_BUILD_DIR=$(abspath $(BUILD)) $(VENV)/bin/python -m pip install -q \
	  --no-deps --no-index .

test: venv
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 300

# The Python suite on every supported CPython found here (Debian's python3 and pyenv's, one
# per version), each installed by `pip install .` into a venv of its own under $(BUILD)/pythons;
# one summary line per interpreter (tests/python/run_pythons.sh).
test-pythons: deps
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) MTHREAD_PYTHONS_DIR=$(abspath $(BUILD))/pythons \
	  bash tests/python/run_pythons.sh

demo: venv
	@echo "== C++: examples/demo.cpp =="
	$(BUILD)/examples/mthread_demo
	@echo "== Python: examples/device_demo.py, a device script run by python -m mthread =="
	$(VENV)/bin/python -m mthread examples/device_demo.py

bench: deps
	bash bench/run.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) build-pip $(VENV)

# --- Reliability (docs/reliability.md) ---------------------------------------------
# `make sanitize`: the C++ suite under ASan+UBSan and TSan, the Python suite against an
# ASan+UBSan extension. `make fuzz SECONDS=N`: the libFuzzer harness for N seconds.
# `make soak MINUTES=N`: the C++ soak and the Python soak for N minutes each.
# `make reliability`: all three at CI sizes (60 s fuzz, 1 minute soak).
SECONDS ?= 60
MINUTES ?= 1
RELIABILITY_PACKAGES := clang libclang-rt-14-dev gdb
.PHONY: reliability-deps sanitize fuzz soak reliability

reliability-deps: deps
	$(call install_missing,$(RELIABILITY_PACKAGES))

sanitize: reliability-deps
	JOBS=$(JOBS) PYTHON=$(PYTHON) bash tests/reliability/sanitize.sh

fuzz: reliability-deps
	JOBS=$(JOBS) bash tests/fuzz/run.sh $(SECONDS)

soak: reliability-deps
	cmake -S . -B build-soak -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTHREAD_WERROR=ON \
	  -DPython3_EXECUTABLE=$(PYTHON) -DMTHREAD_BUILD_TESTS=OFF -DMTHREAD_BUILD_EXAMPLES=OFF \
	  -DMTHREAD_BUILD_RELIABILITY=ON >/dev/null
	cmake --build build-soak -j $(JOBS) --target mthread_soak _mthread
	build-soak/tests/reliability/mthread_soak --seconds $$(( $(MINUTES) * 60 ))
	PYTHONPATH=build-soak/python MTHREAD_SOAK_SECONDS=$$(( $(MINUTES) * 60 )) \
	  MTHREAD_TEST_PYTHON=$(PYTHON) $(PYTHON) -m pytest -q -p no:cacheprovider \
	  --timeout=$$(( $(MINUTES) * 60 + 300 )) tests/python/test_soak.py

reliability: sanitize
	$(MAKE) fuzz SECONDS=60
	$(MAKE) soak MINUTES=1
