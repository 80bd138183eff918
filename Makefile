# Greenroom: `make` lists the targets. Everything here is a thin wrapper
# around scripts/, which also run on their own.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Flags of `go test` in `make test`.
GO_TEST_FLAGS ?= -race -count=1 -timeout 15m
# Module directories `make test` and `make lint` cover; empty means every
# module of go.work. Example: make test MODULES="services/expiry cmd/greenroom"
MODULES ?=

# How long `make fuzz` runs each fuzz target (go test -fuzztime).
FUZZTIME ?= 30s

# Replicas `make up` starts of the services one scales by adding processes
# (each on its own port; README.md, "Scaling"); `make scale SERVICE=assigner
# N=3` changes one of a running deployment.
ASSIGNERS ?= 1
PROVISIONERS ?= 1
EXPIRIES ?= 1
SERVICE ?=
N ?=

# The Go toolchain of every target: go.work's toolchain line (README.md,
# "Go version"). A machine's own Go ignores that line (GOTOOLCHAIN=local in
# its go.env), so it is exported here; the go command fetches that version
# through the module proxy once. GOTOOLCHAIN=local make ... keeps the
# machine's Go.
export GOTOOLCHAIN ?= $(shell awk '$$1 == "toolchain" { print $$2 }' go.work)

each_module = bash scripts/each-module.sh $(if $(strip $(MODULES)),-m "$(MODULES)")

.PHONY: help up down scale test build lint images bench fuzz chaos vuln

help: ## Show this list
	@echo "Greenroom — session staging for container workspaces"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  make %-7s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: MODULES=\"dir ...\" (test, lint), GO_TEST_FLAGS=\"$(GO_TEST_FLAGS)\","
	@echo "  ASSIGNERS, PROVISIONERS, EXPIRIES (up: replicas, default 1), SERVICE, N (scale)"

up: ## Start a complete local deployment (PostgreSQL, NATS, 4 services, demo) and print the admin URL and token
	@bash scripts/build-agent-image.sh
	@ASSIGNERS="$(ASSIGNERS)" PROVISIONERS="$(PROVISIONERS)" EXPIRIES="$(EXPIRIES)" bash scripts/up.sh

scale: ## Add or remove replicas of a running make up: make scale SERVICE=assigner N=3 (no SERVICE: list them)
	@bash scripts/scale.sh $(if $(strip $(SERVICE)),"$(SERVICE)" "$(N)")

down: ## Stop the services and nats-server and remove the containers of this deployment (its greenroom.deployment label)
	@bash scripts/down.sh

test: ## Run every module's tests with -race (needs PostgreSQL, installed if missing, and Docker)
	@bash scripts/ensure-postgres.sh
	@bash scripts/build-demo-image.sh
	@bash scripts/build-agent-image.sh
	@$(each_module) go test $(GO_TEST_FLAGS) ./...

fuzz: ## Run every Go fuzz target for FUZZTIME (default 30s) each and print the inputs each ran; crashers go to testdata/fuzz/
	@FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh $(if $(strip $(MODULES)),-m "$(MODULES)")

bench: ## Run the benchmarks against the raw limits; QUICK=1 for a short run, BENCH_FLAGS='--only assign' for some (results in bench/results/)
	@bash scripts/ensure-postgres.sh
	@bash scripts/build-demo-image.sh
	@bash scripts/build-agent-image.sh
	@go run ./bench/cmd/greenroom-bench $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_FLAGS)

build: ## Build the four services and the greenroom CLI into bin/
	@bash scripts/build.sh bin

lint: ## gofmt, go vet (and staticcheck when installed) in every module; each module tidy and building on its own
	@dirs="$(or $(strip $(MODULES)),$$(go list -m -f '{{.Dir}}'))"; out="$$(gofmt -l $$dirs)"; \
	if [[ -n "$$out" ]]; then echo "lint: gofmt needed:"; echo "$$out"; exit 1; fi; echo "lint: gofmt clean"
	@$(each_module) env GOWORK=off go mod tidy -diff
	@$(each_module) env GOWORK=off go build -o /dev/null ./...
	@$(each_module) go vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then $(each_module) staticcheck ./...; \
	else echo "lint: staticcheck not installed; skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

vuln: ## govulncheck (pinned) over every module against a local copy of the Go vulnerability database; fails on a reachable advisory not accepted in scripts/vuln.sh
	@bash scripts/vuln.sh $(if $(strip $(MODULES)),-m "$(MODULES)")

images: ## Build the container images of docker-compose.yml from local static binaries
	@bash scripts/build-images.sh

chaos: ## Fault matrix: 2 replicas of each service, 3 assigners, faults under load, invariants checked (< 15 min; CHAOS_FLAGS='--faults poison', '--short')
	@bash scripts/ensure-postgres.sh
	@cd tests/e2e && go run ./chaos/cmd/greenroom-chaos --json ../../.run/chaos.json $(CHAOS_FLAGS)
