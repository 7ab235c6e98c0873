# make test is the single entry point for the whole suite: vet, then every package under
# -race with a throwaway PostgreSQL and Redis started (and stopped) by scripts/with-services.sh.
GO ?= go
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.commit=$(COMMIT)

.PHONY: test vet build run bench

test: vet
	bash scripts/with-services.sh $(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/plaza ./cmd/plaza

run:
	$(GO) run ./cmd/plaza

# make bench measures Plaza against a bare net/http baseline with wrk (bench/, written to
# docs/benchmarks.md, .svg and .json); with PostgreSQL installed it measures a second
# run on PostgreSQL + Redis under scripts/with-services.sh. Not part of make test or CI.
bench:
	$(GO) build -o bin/plazabench ./bench/cmd/plazabench
	@if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then \
		bash scripts/with-services.sh bin/plazabench; \
	else \
		echo "bench: PostgreSQL is not installed; measuring SQLite only" >&2; bin/plazabench; \
	fi
