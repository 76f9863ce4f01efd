# wharf: the two commands of the quick start are `make run` and `make test`.
BUILD_DIR ?= build
PYTHON ?= /usr/bin/python3
JOBS ?= $(shell nproc)

.PHONY: deps fuzz-deps build run test unit e2e bench asan fuzz format clean

deps:
	@scripts/install-deps.sh

fuzz-deps:
	@FUZZ=1 scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/wharf up

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

e2e: build
	WHARF_BIN=$(CURDIR)/$(BUILD_DIR)/wharf $(PYTHON) -m pytest -p no:cacheprovider tests/e2e -v --durations=15

test: unit e2e

bench: build
	./scripts/bench.sh

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

# Each libFuzzer target for FUZZ_SECONDS (60) on its corpus; finds go to build-fuzz/scratch/,
# crashes to build-fuzz/crashes/ (scripts/fuzz.sh; FUZZ_MERGE=1 minimises finds into fuzz/corpus/).
fuzz: deps fuzz-deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@scripts/fuzz.sh

format:
	find $(wildcard src tests bench fuzz) \( -name '*.cc' -o -name '*.h' \) -print0 | xargs -0 -r clang-format -i

clean:
	rm -rf build build-debug build-asan build-fuzz
