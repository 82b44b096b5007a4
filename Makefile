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
# The daemon is compiled with Debian's hardening flags, the ones debian/rules builds the package
# with (dpkg-buildflags: -D_FORTIFY_SOURCE=2, -fstack-protector-strong, -Werror=format-security,
# and -z relro -z now when linking): a network daemon wants them anyway, and `make deb` after
# `make build` then finds every object in ccache. Read when the recipe runs, after `make deps`.
BUILDFLAGS = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
HARDENING = -DCMAKE_CXX_FLAGS="$$($(BUILDFLAGS) CXXFLAGS) $$($(BUILDFLAGS) CPPFLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$$($(BUILDFLAGS) LDFLAGS)"

.PHONY: all deps build test tsan fuzz unit-test demo install deb format check-format docs clean \
  preflight-build preflight-test preflight-fuzz preflight-demo preflight-deb

all: build

deps:
	@scripts/install-deps.sh

# Each entry point first checks, in seconds, that every tool and file it will use is there
# (scripts/preflight.sh reads scripts/deps.txt, the table install-deps.sh installs from).
preflight-build: deps
	@scripts/preflight.sh build
preflight-test: deps
	@scripts/preflight.sh build test fuzz browser package
preflight-fuzz: deps
	@scripts/preflight.sh fuzz
preflight-demo: deps
	@scripts/preflight.sh build demo
preflight-deb: deps
	@scripts/preflight.sh build package

build: preflight-build
	@cmake -S . -B $(BUILD) -DPGFANOUT_WERROR=$(WERROR) $(HARDENING) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test: a short libFuzzer run of each target, then unit, integration (real PostgreSQL 15 +
# Redis started by the harness) and SQL (pgTAP) tests through ctest.
# PGFANOUT_WITH_BROWSER=0 leaves out the browser tests (and their packages).
CTEST_EXCLUDE := $(if $(filter 0,$(PGFANOUT_WITH_BROWSER)),-LE browser,)
test: preflight-test build check-format fuzz
	@PGFANOUT_TEST_NATIVE_LIB=$(BUILD)/pgfanout_native.so tests/harness/with-servers.sh ctest --test-dir $(BUILD) --output-on-failure --timeout 900 $(CTEST_EXCLUDE)

# The hub's tests against a daemon built with ThreadSanitizer (build-tsan/): sessions on several
# event loops (hub.threads). A race reported by TSan fails the run (scripts/tsan.sh). CI runs it
# after `make test`.
tsan: preflight-test
	@scripts/tsan.sh build-tsan $(JOBS)

# libFuzzer targets (clang, sanitizers) in build-fuzz/, each run FUZZ_SECONDS (default 5).
fuzz: preflight-fuzz
	@scripts/fuzz-smoke.sh

unit-test: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

demo: preflight-demo build
	@scripts/demo.sh $(BUILD)/pgfanout

install: build
	@cmake --install $(BUILD)

# The Debian package, build-deb/pgfanout_VERSION_amd64.deb, built from debian/ by dpkg-buildpackage
# in a copy of the clone (build-deb/src); the daemon only, with the flags (and ccache objects) of
# `make build`. Install it with: apt install ./build-deb/pgfanout_*_amd64.deb
deb: preflight-deb
	@JOBS=$(JOBS) scripts/make-deb.sh build-deb

docs: build
	@$(BUILD)/pgfanout check --reference > docs/configuration.md

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

check-format:
	@command -v clang-format >/dev/null || { echo "clang-format missing"; exit 1; }
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

clean:
	@rm -rf $(BUILD) build-fuzz build-deb
