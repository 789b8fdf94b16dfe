# pbx-authd — build, test and cross-compile.
#   make test    install what the tests need, then fmt, clippy, all tests (incl. headless
#                Chromium), the four release targets under qemu-user, and the system test
#   make lint    the layer check, fmt, clippy;  make unit  the binary, then every cargo test
#   make cross   release binaries for the boxes: size check + qemu smoke run each
#   make system-test  the firmware on Debian's own kernels under qemu-system (x86_64,
#                aarch64, armv7 musl and glibc)
#   make deps    only the installs (idempotent; apt-get update at most once)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The firmware: std built from source on a pinned nightly, at the release profile's
# opt-level and inside its LTO, and without std's backtrace symbolizer (gimli,
# addr2line, miniz: of no use in a stripped binary without unwind tables); what each
# step saved is in docs/performance.md. Panic locations (file:line:col of every unwrap,
# index and arithmetic check) are not embedded (-Zlocation-detail=none, ~115 KB): a
# panic's message still says what failed. armv7 musl runs whatever the box's libc is
# (glibc, uClibc, musl); rustup ships no std for it at all.
TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf \
  armv7-unknown-linux-musleabihf
# cargo-zigbuild takes the glibc floor as a target suffix (armv7 boxes: glibc 2.17).
GLIBC_FLOOR_armv7-unknown-linux-gnueabihf := .2.17
# The size budget of the stripped firmware (SPEC §7): 3 MiB for each ARM target (the
# boxes' flash), 3.5 MiB for x86_64 (system tests, bench, x86 boxes).
MAX_BYTES := 3145728
MAX_BYTES_x86_64-unknown-linux-musl := 3670016
NIGHTLY := nightly-2026-10-30
# Stable's x86_64 musl std: make bench's bare-hyper floor is built with it.
STABLE_MUSL := x86_64-unknown-linux-musl
# -Zfmt-debug=shallow: a derived Debug prints its type's (or fieldless variant's) name
# only; hand-written ones (strings, paths, durations) are whole (docs/performance.md).
BUILD_STD = RUSTFLAGS="-C link-self-contained=no -Zlocation-detail=none -Zfmt-debug=shallow" $(ZIGBUILD) +$(NIGHTLY) zigbuild \
  -Zbuild-std=std,panic_abort -Zbuild-std-features= --release -p pbx-authd
# Release builds abort on panic, so nothing ever unwinds: the DWARF unwind tables
# (~13% of the file) only served backtraces. Dropped from the firmware copy, as C
# firmware does with -fno-asynchronous-unwind-tables. (binutils-multiarch objcopy
# reads all three architectures.)
FIRMWARE_OBJCOPY := --remove-section=.eh_frame --remove-section=.eh_frame_hdr

APT_PACKAGES := qemu-user-static libc6-armhf-cross chromium chromium-driver curl binutils \
  python3-aiosmtpd iproute2 util-linux binutils-multiarch \
  busybox-static shellcheck strace e2fsprogs rsyslog faketime nftables spamassassin nodejs \
  freeradius slapd ldap-utils
PY_SCRIPTS = $(shell python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
ZIGBUILD = $(PY_SCRIPTS)/cargo-zigbuild
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps deps-apt deps-pip deps-rustup deps-npm deps-nightly lint unit cross firmware-x86_64 firmware-aarch64 \
  firmware-armv7 firmware-armv7-glibc run fuzz bench soak system-test fixture

test: deps lint unit cross system-test
	@# One closing line: cargo's test counts, one per qemu smoke-run target, one per
	@# system scenario on a real kernel.
	@awk -v smoke="$$(grep -c '^ok ' target/cross-report.txt)" \
	  -v sys="$$(grep -c '^ok system' target/system-report.txt)" \
	  '/^test result:/ {p += $$4; f += $$6} END {print "summary: " p + smoke + sys " passed, " f " failed"}' \
	  target/test-output.txt

deps: deps-apt deps-pip deps-rustup deps-npm

# A mirror caught mid-sync answers an index of the wrong size ("Mirror sync in
# progress?", seen on a fresh machine): apt-get update is tried three times, 20 s
# apart, and then left to the install or download after it, which fail by name if an
# index they need is missing.
APT_UPDATE = for try in 1 2 3; do $(SUDO) apt-get update -qq && break; \
  echo "apt-get update failed (try $$try of 3)"; [ $$try = 3 ] || sleep 20; done

# apt_install: installs the listed Debian packages that are missing (apt-get update
# only when something is).
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT_UPDATE); \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-apt:
	$(call apt_install,$(APT_PACKAGES))

# Pinned: zig supplies the firmware's linker and libc (since 0.16 partly its own code,
# e.g. malloc), so another version is another firmware.
ZIG_PINS := cargo-zigbuild==0.24.1 ziglang==0.17.1
deps-pip:
	@python3 -c 'import importlib.metadata as m, sys; sys.exit(any(f"{p}=={m.version(p)}" not in "$(ZIG_PINS)".split() for p in ("cargo-zigbuild", "ziglang")))' \
	  2>/dev/null && [ -x "$(ZIGBUILD)" ] || \
	  python3 -m pip install --quiet --disable-pip-version-check $(ZIG_PINS)

# axe-core and Lighthouse 12 for the UI tests, pinned by tests/npm/package-lock.json,
# installed into target/npm (Lighthouse 13 needs Node 22; Debian 12 has Node 18/20).
NPM_DIR := target/npm
deps-npm: deps-apt
	@mkdir -p $(NPM_DIR)
	@cmp -s tests/npm/package-lock.json $(NPM_DIR)/package-lock.json && [ -d $(NPM_DIR)/node_modules/axe-core ] || { \
	  cp tests/npm/package.json tests/npm/package-lock.json $(NPM_DIR)/ && \
	  npm ci --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error; }

deps-rustup:
	@installed="$$(rustup target list --installed)"; for t in $(STABLE_MUSL); do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done

lint:
	@# The layers: below api/ nothing knows HTTP (flows/ holds the rules; auth/, store/
	@# and mail/ serve them).
	@if grep -rnE '\b(hyper|http_body_util)(::|;)' daemon/src/flows daemon/src/auth daemon/src/store daemon/src/mail; then \
	  echo "daemon/src/{flows,auth,store,mail} must not use hyper: decode and encode in daemon/src/api"; exit 1; fi
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# The e2e suite runs the daemon binary that this first step builds (once).
# No doc-tests: the crates have none, and an empty run would close the log.
unit:
	cargo build -p pbx-authd
	@mkdir -p target
	cargo test --workspace --lib --bins --tests 2>&1 | tee target/test-output.txt

# What make cross needs of its own (qemu-user for the smoke runs, the armhf libc for
# the glibc build, objdump for every architecture), so that it runs on a fresh machine.
CROSS_APT := qemu-user-static libc6-armhf-cross binutils binutils-multiarch curl
deps-nightly:
	@rustup run $(NIGHTLY) rustc --version >/dev/null 2>&1 && \
	  [ -d "$$(rustup run $(NIGHTLY) rustc --print sysroot)/lib/rustlib/src/rust/library" ] || \
	  rustup toolchain install $(NIGHTLY) --profile minimal --component rust-src

cross: deps-pip deps-rustup deps-nightly
	$(call apt_install,$(CROSS_APT))
	@rm -f target/cross-report.txt
	@for t in $(TARGETS); do \
	  case $$t in armv7-unknown-linux-gnueabihf) floor=$(GLIBC_FLOOR_armv7-unknown-linux-gnueabihf) ;; *) floor= ;; esac; \
	  $(BUILD_STD) --target "$$t$$floor"; \
	  mkdir -p target/firmware/$$t; \
	  objcopy $(FIRMWARE_OBJCOPY) target/$$t/release/pbx-authd target/firmware/$$t/pbx-authd; \
	  case $$t in x86_64-unknown-linux-musl) budget=$(MAX_BYTES_x86_64-unknown-linux-musl) ;; *) budget=$(MAX_BYTES) ;; esac; \
	  bash tests/scripts/qemu-smoke.sh "$$t" "target/firmware/$$t/pbx-authd" $$budget | tee -a target/cross-report.txt; \
	done
	@cat target/cross-report.txt

# The firmware on Debian's own kernels under qemu-system (TCG): x86_64, aarch64 and the
# boxes' armv7 (musl and glibc), busybox init and rootfs-overlay/ as shipped
# (tests/system/boot.py). The kernel packages are downloaded once into target/system/
# (never installed); loopback only (qemu user networking).
# Which scenarios and how many power cuts (make soak runs ten times as many).
SYSTEM_SCENARIOS ?= flash nand aarch64 armv7 armv7-glibc disk
SYSTEM_NAND_CUTS ?= 50
SYSTEM_DISK_CUTS ?= 20
SYSTEM_ARMV7_CUTS ?= 20
# What is downloaded, per foreign architecture: arm64's kernel and busybox; armhf's
# (armmp) kernel, busybox and mtd-utils (ubiattach, ubimkvol: not busybox applets).
SYSTEM_DEBS := 'linux-image-*-amd64-unsigned_*.deb' 'linux-image-*-arm64-unsigned_*.deb' \
  'busybox-static_*_arm64.deb' 'linux-image-*-armmp_*_armhf.deb' 'busybox-static_*_armhf.deb' \
  'mtd-utils_*_armhf.deb' 
SYSTEM_APT := qemu-system-x86 qemu-system-arm busybox-static cpio kmod mtd-utils python3-aiosmtpd openssl e2fsprogs \
  libc6-armhf-cross binutils
system-test: firmware-x86_64 firmware-aarch64 firmware-armv7 firmware-armv7-glibc
	$(call apt_install,$(SYSTEM_APT))
	@mkdir -p target/system
	@# Debian's own kernels (amd64; arm64 with busybox-static:arm64 for the aarch64 boot;
	@# armmp with busybox-static:armhf and mtd-utils:armhf for the armv7 ones), downloaded
	@# once into target/system/, never installed. Each architecture's kernel is the one
	@# its own index names (the same version, unless a mirror's index of one architecture
	@# is caught mid-sync: then that one is its main release's kernel).
	@missing=""; for d in $(SYSTEM_DEBS); do ls target/system/$$d >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  for a in arm64 armhf; do \
	    dpkg --print-foreign-architectures | grep -qx $$a || $(SUDO) dpkg --add-architecture $$a; \
	  done; \
	  $(APT_UPDATE); \
	  kver() { apt-cache depends "linux-image-$$1" | sed -n "s/.*Depends: linux-image-\(.*\)-$$1\$$/\1/p"; }; \
	  amd64=$$(kver amd64) arm64=$$(kver arm64:arm64) armhf=$$(kver armmp:armhf); \
	  cd target/system && apt-get download "linux-image-$${amd64}-amd64-unsigned" \
	    "linux-image-$${arm64}-arm64-unsigned:arm64" busybox-static:arm64 \
	    "linux-image-$${armhf}-armmp:armhf" busybox-static:armhf mtd-utils:armhf 2>&1 \
	    | grep -v '^W: Download is performed unsandboxed' || true; \
	fi
	@for d in $(SYSTEM_DEBS); do ls target/system/$$d >/dev/null; done
	SYSTEM_SCENARIOS="$(SYSTEM_SCENARIOS)" SYSTEM_NAND_CUTS="$(SYSTEM_NAND_CUTS)" \
	  SYSTEM_DISK_CUTS="$(SYSTEM_DISK_CUTS)" SYSTEM_ARMV7_CUTS="$(SYSTEM_ARMV7_CUTS)" \
	  python3 tests/system/boot.py target/firmware/x86_64-unknown-linux-musl/pbx-authd target/system \
	    target/firmware/aarch64-unknown-linux-musl/pbx-authd \
	    target/firmware/armv7-unknown-linux-musleabihf/pbx-authd \
	    target/firmware/armv7-unknown-linux-gnueabihf/pbx-authd \
	  | tee target/system-report.txt

run:
	cargo run -- --dev

# One shipped binary alone (x86_64 for make bench; all four for make system-test);
# $(2): the glibc floor, where there is one.
define firmware
	$(BUILD_STD) --target $(1)$(2)
	@mkdir -p target/firmware/$(1)
	objcopy $(FIRMWARE_OBJCOPY) target/$(1)/release/pbx-authd target/firmware/$(1)/pbx-authd
endef
firmware-x86_64: deps-pip deps-rustup deps-nightly
	$(call firmware,x86_64-unknown-linux-musl)
firmware-aarch64: deps-pip deps-rustup deps-nightly
	$(call firmware,aarch64-unknown-linux-musl)
firmware-armv7: deps-pip deps-rustup deps-nightly
	$(call firmware,armv7-unknown-linux-musleabihf)
firmware-armv7-glibc: deps-pip deps-rustup deps-nightly
	$(call firmware,armv7-unknown-linux-gnueabihf,$(GLIBC_FLOOR_armv7-unknown-linux-gnueabihf))

# Reliability under SIGKILL, flash faults, slow clients and brute force
# (tests/bench/soak.py); loopback only, bounded in time, root (mount, strace -p);
# not part of make test.
soak:
	$(call apt_install,strace util-linux)
	cargo build --release -p pbx-authd
	python3 tests/bench/soak.py target/release/pbx-authd $(or $(SOAK_CYCLES),200)
	@# Power cuts on a real kernel, ten times make test's count: ~2 h.
	$(MAKE) system-test SYSTEM_SCENARIOS="nand disk" SYSTEM_NAND_CUTS=500 SYSTEM_DISK_CUTS=200

# An upgrade fixture: a state directory written by a released binary, committed under
# tests/fixtures/<version>/ and opened by every later one (e2e `upgrade::`). Make one
# from each release before its store changes: make fixture FIXTURE_BIN=path/to/pbx-authd
# FIXTURE_VERSION=0.1.0-<commit>.
fixture:
	@test -n "$(FIXTURE_BIN)" -a -n "$(FIXTURE_VERSION)" || \
	  { echo "make fixture FIXTURE_BIN=path/to/released/pbx-authd FIXTURE_VERSION=<version>"; exit 1; }
	cargo build -p pbx-e2e --bin make-fixture
	PBX_AUTHD_BIN="$(abspath $(FIXTURE_BIN))" FIXTURE_COMMIT="$(lastword $(subst -, ,$(FIXTURE_VERSION)))" \
	  target/debug/make-fixture tests/fixtures/$(FIXTURE_VERSION)

# Benchmarks against peers (nginx-light, raw argon2id), on loopback and, for the password
# spray, in network namespaces it makes and removes (root: ip netns); not part of make
# test. Writes target/bench/report.md. BENCH_SECONDS per run (default 8), BENCH_ROUNDS
# interleaved rounds of the page, API and HTTPS runs (default 3), BENCH_SPRAY_SECONDS of
# spray per variant (default 60, in BENCH_PROBE_ROUNDS = 3 windows, each after 10 s of
# the probe alone), BENCH_SPRAY_VARIANTS (default "default nftables unblocked nice5").
bench: firmware-x86_64
	$(call apt_install,nginx-light wrk iproute2 nftables curl)
	@# Debian starts the packaged nginx on port 80; the benchmark runs its own.
	@$(SUDO) service nginx stop >/dev/null 2>&1 || true
	cargo build --release -p pbx-e2e --bin argon2-raw --bin probe --bin spray
	$(ZIGBUILD) zigbuild --release -p pbx-e2e --bin bare-hyper --target x86_64-unknown-linux-musl
	@# The page path's floor: the same server with every crate at opt-level 3.
	CARGO_PROFILE_RELEASE_OPT_LEVEL=3 $(ZIGBUILD) zigbuild --release -p pbx-e2e --bin bare-hyper \
	  --target x86_64-unknown-linux-musl --target-dir target/floor-o3
	python3 tests/bench/bench.py target/firmware/x86_64-unknown-linux-musl/pbx-authd \
	  target/release/argon2-raw target/firmware target/x86_64-unknown-linux-musl/release/bare-hyper \
	  target/release/probe target/release/spray \
	  target/floor-o3/x86_64-unknown-linux-musl/release/bare-hyper

# Fuzz every decoder of untrusted input for FUZZ_SECONDS each (nightly + cargo-fuzz;
# not part of make test). New crashes land in tests/fuzz/artifacts/<target>/: fix them,
# then copy the input to tests/fuzz/regressions/<target>/ so cargo test replays it.
FUZZ_TARGETS := json_bodies cookie_csrf config control
FUZZ_SECONDS ?= 300
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/corpus/$$t && cp -n tests/fuzz/regressions/$$t/* tests/fuzz/corpus/$$t/; \
	  cargo +nightly fuzz run --fuzz-dir tests/fuzz -O $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 || exit 1; \
	done
