# pgfanout — the two set-up commands on a fresh Debian 12 machine (as root):
#   make demo    install what is missing, build, and run the chat example end to end
#   make test    install what is missing, build, and run every test against throwaway servers
BUILD ?= build
JOBS ?= 2
WERROR ?= ON
CMAKE_FLAGS ?=
# ccache hashes paths relative to the clone and not the build directory's name, so a second clone
# (or CI's fresh one) reuses the cache; debug info of a reused object names the first clone's paths.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: all deps build test fuzz unit-test demo install format check-format docs clean \
  preflight-build preflight-test preflight-fuzz preflight-demo

all: build

deps:
	@scripts/install-deps.sh

# Each entry point first checks, in seconds, that every tool and file it will use is there
# (scripts/preflight.sh reads scripts/deps.txt, the table install-deps.sh installs from).
preflight-build: deps
	@scripts/preflight.sh build
preflight-test: deps
	@scripts/preflight.sh build test fuzz browser
preflight-fuzz: deps
	@scripts/preflight.sh fuzz
preflight-demo: deps
	@scripts/preflight.sh build demo

build: preflight-build
	@cmake -S . -B $(BUILD) -DPGFANOUT_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test: a short libFuzzer run of each target, then unit, integration (real PostgreSQL 15 +
# Redis started by the harness) and SQL (pgTAP) tests through ctest.
# PGFANOUT_WITH_BROWSER=0 leaves out the browser tests (and their packages).
CTEST_EXCLUDE := $(if $(filter 0,$(PGFANOUT_WITH_BROWSER)),-LE browser,)
test: preflight-test build check-format fuzz
	@tests/harness/with-servers.sh ctest --test-dir $(BUILD) --output-on-failure --timeout 900 $(CTEST_EXCLUDE)

# libFuzzer targets (clang, sanitizers) in build-fuzz/, each run FUZZ_SECONDS (default 5).
fuzz: preflight-fuzz
	@scripts/fuzz-smoke.sh

unit-test: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

demo: preflight-demo build
	@scripts/demo.sh $(BUILD)/pgfanout

install: build
	@cmake --install $(BUILD)

docs: build
	@$(BUILD)/pgfanout check --reference > docs/configuration.md

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

check-format:
	@command -v clang-format >/dev/null || { echo "clang-format missing"; exit 1; }
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

clean:
	@rm -rf $(BUILD) build-fuzz
