# ukey: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help deps build demo test e2e fleet bench bench-compare fuzz format clean deb install uninstall man

help:
	@echo "make demo   install what is missing, build, and walk the demo host's boot chain"
	@echo "make test   install what is missing, start the peers the suites need, run swift test and the e2e"
	@echo "make e2e    a real guest under libvirt and QEMU starts only when ukeyd vouches for it (root)"
	@echo "make fleet  ten ukey hosts attested by stock Keylime; a tampered one fails, naming the entity"
	@echo "make bench  benchmarks against peers measured in the same run (release build)"
	@echo "make bench-compare BASE=REV  this ukeyd against the one built from REV (GetInfo, CheckExec, Measure)"
	@echo "make fuzz   coverage-guided fuzzing of every parser, FUZZ_SECONDS each (default 60)"
	@echo "make format apply .swift-format to Sources and Tests (make test checks it)"
	@echo "make deb    ukey_<version>_amd64.deb from a release build, checked by lintian"
	@echo "make install DESTDIR=... PREFIX=/usr/local   the package's layout without a package; make uninstall removes it"

deps:
	@scripts/install-deps.sh

build: deps
	swift build

demo: build
	@scripts/demo.sh

test: deps
	@scripts/test.sh

e2e: build
	@scripts/e2e.sh

fleet: build
	@swift build --product ukey-keylime-agent
	@scripts/fleet.sh

bench: deps
	@scripts/bench.sh

bench-compare: deps
	@BASE=$(BASE) scripts/bench-compare.sh

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_TARGETS)

format:
	swift format -i -r Sources Tests

deb: deps
	@scripts/deb.sh

PREFIX ?= /usr/local
man: deps
	swift build -c release
	@BUILD=.build/release scripts/man.sh

install: man
	@DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) BUILD=.build/release scripts/install.sh install

uninstall:
	@DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) scripts/install.sh uninstall

clean:
	rm -rf .build .build-fuzz .build-deb
