# floe: the commands people and CI run. `make test` runs every test.
.DEFAULT_GOAL := help

GO ?= go
# The same flags the Dockerfile uses for the release binary.
BUILD_FLAGS := -trimpath -ldflags="-s -w"

.PHONY: help test test-short dev build localstack-up localstack-down fmt vet

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

test: ## run EVERY test: starts MinIO+etcd (localstack), go vet, go test -race, tests/*.sh
	@bash scripts/test.sh

test-short: ## go test without localstack (MinIO tests skip; etcd is embedded)
	$(GO) test -count=1 ./...

dev: ## run floe dev
	$(GO) run ./cmd/floe dev

build: ## build bin/floe (static, stripped)
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o bin/floe ./cmd/floe

localstack-up: ## start MinIO and etcd on loopback; writes .cache/localstack/env
	@bash localstack/start.sh

localstack-down: ## stop MinIO and etcd (data kept; localstack/stop.sh --clean deletes it)
	@bash localstack/stop.sh

fmt: ## gofmt every Go file
	$(GO) fmt ./...

vet: ## go vet
	$(GO) vet ./...
