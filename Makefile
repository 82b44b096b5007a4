# pgfanout — the two set-up commands on a fresh Debian 12 machine (as root):
#   make demo    install what is missing, build, and run the chat example end to end
#   make test    install what is missing, build, and run every test against throwaway servers
BUILD ?= build
JOBS ?= 2
WERROR ?= ON
CMAKE_FLAGS ?=

.PHONY: all deps build test fuzz unit-test demo install format check-format docs clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DPGFANOUT_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test: a short libFuzzer run of each target, then unit, integration (real PostgreSQL 15 +
# Redis started by the harness) and SQL (pgTAP) tests through ctest.
test: build check-format fuzz
	@tests/harness/with-servers.sh ctest --test-dir $(BUILD) --output-on-failure --timeout 900

# libFuzzer targets (clang, sanitizers) in build-fuzz/, each run FUZZ_SECONDS (default 5).
fuzz: deps
	@scripts/fuzz-smoke.sh

unit-test: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

demo: build
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
