# proxcage build and test entry points. `make test` is what CI runs.

# The Go toolchain: the first Go at least as new as go.mod's `go` line among
# $GO, PATH, /usr/local/go and /usr/local/lib/proxcage-go (where
# scripts/install-deps.sh installs it). Its directory goes first on PATH, so
# the scripts and tests below run the same Go.
GO_FOUND  := $(shell GO='$(GO)' ./scripts/find-go.sh 2>/dev/null)
GO        := $(or $(GO_FOUND),go)
ifneq ($(GO_FOUND),)
export PATH := $(dir $(GO_FOUND)):$(PATH)
endif
export GO

BIN       := bin/proxcage
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
TAGS      ?= seccomp
# EXTRA_LDFLAGS: `make deb` strips the packaged binary with '-s -w'.
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT) $(EXTRA_LDFLAGS)
# The version and commit go in through LDFLAGS; -buildvcs=false keeps a
# build working in a checkout git will not read (another owner's clone).
GOBUILD   := $(GO) build -trimpath -buildvcs=false
export CGO_ENABLED := 1

# make install: the GNU directory variables, and DESTDIR for staging.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
DESTDIR    ?=

.PHONY: all build go-check deps test-deps test unit e2e e2e-pve-real validation validation-backends clients critest fresh deb deb-test install uninstall bench man lint demo clean

all: build

# Debian packages the build needs (cgo + libseccomp for seccomp profiles),
# and the Go toolchain when none is new enough.
deps:
	@./scripts/install-deps.sh build

go-check:
	@[ -n "$(GO_FOUND)" ] || ./scripts/find-go.sh >/dev/null

build: go-check
	$(GOBUILD) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/proxcage
	CGO_ENABLED=0 $(GOBUILD) -ldflags '-s -w' -o $(dir $(BIN))proxcage-lxc-init ./cmd/proxcage-lxc-init

# Build, make a busybox bundle and run it on the native backend.
demo: build
	@./scripts/demo.sh

# golangci-lint, built from its pinned module (tools/lint/go.mod) through
# the Go module proxy; .golangci.yml says which linters and why each
# exclusion.
GOLANGCI := bin/golangci-lint
$(GOLANGCI): tools/lint/go.mod tools/lint/go.sum
	$(GO) -C tools/lint build -trimpath -buildvcs=false -o ../../$(GOLANGCI) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

lint: go-check $(GOLANGCI)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) vet -tags '$(TAGS) genman' ./cmd/proxcage
	$(GOLANGCI) run --allow-parallel-runners ./...
	$(GOLANGCI) run --allow-parallel-runners --build-tags '$(TAGS) genman' ./cmd/proxcage

unit: go-check
	$(GO) test -tags '$(TAGS)' -count=1 ./internal/... ./cmd/... ./test/pvesim/... ./test/pveschema/...
	$(GO) test -tags '$(TAGS) genman' -count=1 -run 'Man' ./cmd/proxcage/

e2e: build
	PROXCAGE_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' -count=1 -v ./test/e2e/ ./test/pctdouble/

# The pve e2e suite against a real Proxmox VE node (run there, as root).
e2e-pve-real: build
	PROXCAGE_PVE_REAL=1 PROXCAGE_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' -count=1 -v -run 'PVE' ./test/e2e/

validation: build
	./test/validation/gate_test.sh
	RETRIES=1 REQUIRE_SUPERSET=proxcage:runc ./test/validation/run.sh proxcage=$(CURDIR)/$(BIN) runc=/usr/sbin/runc crun

# runtime-tools against the pve (pct double) and lxc backends, next to
# native in each run: a per-program table (no pass/fail gate).
validation-backends: build
	./test/validation/pve.sh $(CURDIR)/$(BIN)
	./test/validation/lxc.sh $(CURDIR)/$(BIN)

# Each engine against each backend: native, lxc, and pve on the pct
# double (BACKEND routes through a config; test/clients/lib.sh).
clients: build
	for b in native lxc pve; do \
		for e in podman containerd docker; do \
			echo "== $$e on $$b"; BACKEND=$$b ./test/clients/$$e.sh $(CURDIR)/$(BIN) || exit 1; \
		done; \
	done
	./scripts/debian-rootfs.sh $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase
	./test/clients/image-compare.sh $(CURDIR)/$(BIN) $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase

# Kubernetes' critest (cri-tools v1.37.0) through containerd 1.6's CRI with
# runc, then proxcage, as the runtime; fails unless proxcage passes every
# spec runc passes.
critest: build
	./test/clients/critest.sh runc=/usr/sbin/runc proxcage=$(CURDIR)/$(BIN)

# Every cache builder into paths whose parents do not exist (test/fresh).
fresh: build
	./test/fresh/run.sh $(CURDIR)/$(BIN)

# Everything CI runs: installs the test dependencies first.
test:
	@./scripts/install-deps.sh test
	$(MAKE) lint unit e2e validation validation-backends clients critest fresh deb-test

bench: build
	./bench/bench.sh proxcage=$(CURDIR)/$(BIN) runc=/usr/sbin/runc crun crun-raw
	./scripts/debian-rootfs.sh $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase
	ROOTFS=$${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase ./bench/template.sh
	./bench/pve.sh $(CURDIR)/$(BIN)
	$(GO) test -run '^$$' -bench APILifecycle20ms -benchtime 20x ./internal/backend/pve/
	./bench/image.sh $(CURDIR)/$(BIN) $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase
	./bench/engines.sh $(CURDIR)/$(BIN)
	./bench/lxc.sh $(CURDIR)/$(BIN)
	./bench/upgrade.sh $(CURDIR)/$(BIN)
	./bench/spawns.sh $(CURDIR)/$(BIN)
	./bench/scale.sh $(CURDIR)/$(BIN)

# The pages carry the version `proxcage version` prints: the same LDFLAGS.
man: go-check
	$(GOBUILD) -tags '$(TAGS) genman' -ldflags '$(LDFLAGS)' -o bin/proxcage-genman ./cmd/proxcage
	rm -rf man && bin/proxcage-genman gen-man man/
	@echo "$$(ls man | wc -l) man pages in man/ (man -l man/proxcage.8; the config file: man -l man/proxcage-config.toml.5)"

# The binary, the lxc stand-in (a helper, in libexec), man pages, shell
# completions and, unless one is there already, an example config.
install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/proxcage $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/vendor-completions \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d $(DESTDIR)$(SYSCONFDIR)/proxcage
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/proxcage
	install -m 755 $(dir $(BIN))proxcage-lxc-init $(DESTDIR)$(LIBEXECDIR)/proxcage/proxcage-lxc-init
	install -m 644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	$(BIN) completion bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/proxcage
	$(BIN) completion zsh > $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_proxcage
	$(BIN) completion fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/proxcage.fish
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/proxcage/config.toml ]; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/proxcage/config.toml"; \
	else install -m 644 packaging/config.toml $(DESTDIR)$(SYSCONFDIR)/proxcage/config.toml; fi

# What install put there, but the config (yours by now).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/proxcage $(DESTDIR)$(LIBEXECDIR)/proxcage/proxcage-lxc-init \
		$(DESTDIR)$(DATADIR)/bash-completion/completions/proxcage \
		$(DESTDIR)$(DATADIR)/zsh/vendor-completions/_proxcage \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/proxcage.fish
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(wildcard man/*.5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard man/*.8)))
	-rmdir $(DESTDIR)$(LIBEXECDIR)/proxcage

# A Debian package (bin/proxcage_VERSION_ARCH.deb) built with nfpm, pinned
# in tools/go.mod; `apt install ./bin/proxcage_*.deb` on Debian 12/13, PVE 8/9.
deb: go-check
	./packaging/mkdeb.sh

# The package installed into fresh Debian 12 and 13 roots, run, removed.
deb-test: deb
	./test/package/deb.sh bin/proxcage_*.deb

clean:
	rm -rf bin man _demo
