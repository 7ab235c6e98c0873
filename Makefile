# make test is the single entry point for the whole suite: vet, then every package under
# -race with a throwaway PostgreSQL and Redis started (and stopped) by scripts/with-services.sh.
GO ?= go
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.commit=$(COMMIT)

.PHONY: test vet build run

test: vet
	bash scripts/with-services.sh $(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/plaza ./cmd/plaza

run:
	$(GO) run ./cmd/plaza
