# ukey: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help deps build demo test bench clean

help:
	@echo "make demo   install what is missing, build, and walk the demo host's boot chain"
	@echo "make test   install what is missing, start the peers the suites need, run swift test"
	@echo "make bench  benchmarks against peers measured in the same run (release build)"

deps:
	@scripts/install-deps.sh

build: deps
	swift build

demo: build
	@scripts/demo.sh

test: deps
	@scripts/test.sh

bench: deps
	@scripts/bench.sh

clean:
	rm -rf .build
