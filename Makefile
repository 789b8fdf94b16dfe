# pbx-authd — build, test and cross-compile.
#   make test    install what the tests need, then fmt, clippy, all tests (incl. headless
#                Chromium), and the three release targets under qemu-user
#   make cross   release binaries for the boxes: size check + qemu smoke run each
#   make deps    only the installs (idempotent; apt-get update at most once)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf
# cargo-zigbuild takes the glibc floor as a target suffix.
zig_target = $(if $(filter armv7-unknown-linux-gnueabihf,$(1)),$(1).2.17,$(1))
MAX_BYTES := 3145728

APT_PACKAGES := qemu-user-static libc6-armhf-cross chromium chromium-driver curl binutils
PY_SCRIPTS = $(shell python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
ZIGBUILD = $(PY_SCRIPTS)/cargo-zigbuild
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps deps-apt deps-pip deps-rustup lint unit cross run

test: deps lint unit cross
	@echo "make test: all checks passed"

deps: deps-apt deps-pip deps-rustup

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps-pip:
	@python3 -c 'import ziglang' 2>/dev/null && [ -x "$(ZIGBUILD)" ] || \
	  python3 -m pip install --quiet --disable-pip-version-check cargo-zigbuild ziglang

deps-rustup:
	@installed="$$(rustup target list --installed)"; for t in $(TARGETS); do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# The e2e suite runs the daemon binary that this first step builds (once).
unit:
	cargo build -p pbx-authd
	cargo test --workspace

cross: deps-pip deps-rustup
	@rm -f target/cross-report.txt
	@for t in $(TARGETS); do \
	  $(ZIGBUILD) zigbuild --release -p pbx-authd --target $(call zig_target,$$t); \
	  bash tests/scripts/qemu-smoke.sh "$$t" "target/$$t/release/pbx-authd" $(MAX_BYTES) | tee -a target/cross-report.txt; \
	done
	@cat target/cross-report.txt

run:
	cargo run -- --dev
