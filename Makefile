# proxcage build and test entry points. `make test` is what CI runs.
GO        ?= go
BIN       := bin/proxcage
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
TAGS      ?= seccomp
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export CGO_ENABLED := 1

.PHONY: all build deps test-deps test unit e2e e2e-pve-real validation validation-backends clients bench man lint demo clean

all: build

# Debian packages the build needs (cgo + libseccomp for seccomp profiles).
deps:
	@./scripts/install-deps.sh build

build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/proxcage
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(dir $(BIN))proxcage-lxc-init ./cmd/proxcage-lxc-init

# Build, make a busybox bundle and run it on the native backend.
demo: build
	@./scripts/demo.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) vet -tags '$(TAGS) genman' ./cmd/proxcage

unit:
	$(GO) test -tags '$(TAGS)' -count=1 ./internal/... ./cmd/... ./test/pvesim/... ./test/pveschema/...

e2e: build
	PROXCAGE_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' -count=1 -v ./test/e2e/ ./test/pctdouble/

# The pve e2e suite against a real Proxmox VE node (run there, as root).
e2e-pve-real: build
	PROXCAGE_PVE_REAL=1 PROXCAGE_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' -count=1 -v -run 'PVE' ./test/e2e/

validation: build
	RETRIES=1 REQUIRE_SUPERSET=proxcage:runc ./test/validation/run.sh proxcage=$(CURDIR)/$(BIN) runc=/usr/sbin/runc crun

# runtime-tools against the pve (pct double) and lxc backends, next to
# native in each run: a per-program table (no pass/fail gate).
validation-backends: build
	./test/validation/pve.sh $(CURDIR)/$(BIN)
	./test/validation/lxc.sh $(CURDIR)/$(BIN)

clients: build
	./test/clients/podman.sh $(CURDIR)/$(BIN)
	./test/clients/containerd.sh $(CURDIR)/$(BIN)
	./scripts/debian-rootfs.sh $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase
	./test/clients/image-compare.sh $(CURDIR)/$(BIN) $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase

# Everything CI runs: installs the test dependencies first.
test:
	@./scripts/install-deps.sh test
	$(MAKE) lint unit e2e validation validation-backends clients

bench: build
	./bench/bench.sh proxcage=$(CURDIR)/$(BIN) runc=/usr/sbin/runc crun crun-raw
	./scripts/debian-rootfs.sh $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase
	ROOTFS=$${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase ./bench/template.sh
	./bench/pve.sh $(CURDIR)/$(BIN)
	$(GO) test -run '^$$' -bench APILifecycle20ms -benchtime 20x ./internal/backend/pve/
	./bench/image.sh $(CURDIR)/$(BIN) $${PROXCAGE_CACHE:-$$HOME/.cache/proxcage}/debian-minbase
	./bench/lxc.sh $(CURDIR)/$(BIN)

man:
	$(GO) build -tags '$(TAGS) genman' -o bin/proxcage-genman ./cmd/proxcage
	bin/proxcage-genman gen-man man/
	@ls man | head -3; echo "man pages in man/ (man -l man/proxcage.8)"

clean:
	rm -rf bin man
