# make test is the single entry point for the whole suite: vet, the generated-files check,
# then every package under -race with a throwaway PostgreSQL and Redis started (and
# stopped) by scripts/with-services.sh, every benchmark once (-short: smaller seeds), so a
# benchmark that no longer works fails here, and the bench module's own tests.
GO ?= go
# VERSION is the nearest tag (v1.2.3, or v1.2.3-4-gabc1234 past it), else the commit;
# -dirty marks a build from uncommitted changes. `plaza version` prints both.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: test vet check-generated proto tools lint-openapi e2e screenshot build run bench demo-cluster

test: vet check-generated tools lint-openapi
	bash scripts/with-services.sh $(GO) test -race -count=1 -timeout 20m ./...
	bash scripts/with-services.sh $(GO) test -run '^$$' -bench . -benchtime 1x -short -count=1 ./...
	cd bench && $(GO) test -race -count=1 ./...
	GO=$(GO) bash e2e/run.sh

# e2e runs the browser tests (e2e/run.sh: Debian's chromium driven by playwright-core against
# a Plaza it builds and starts); without chromium they skip, under CI=true they fail.
e2e:
	GO=$(GO) bash e2e/run.sh

# screenshot refreshes docs/webui.png, the README's picture of the app, from the browser tests.
screenshot:
	PLAZA_E2E_SCREENSHOT=docs/webui.png GO=$(GO) bash e2e/run.sh

# lint-openapi lints api/openapi/openapi.yaml with Redocly CLI (npm, installed into tools/
# by scripts/node-tools.sh; Plaza itself never needs Node).
lint-openapi:
	bash scripts/lint-openapi.sh

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

# check-generated fails when go mod tidy or go generate ./... would change anything (the
# protobuf and gqlgen code included), when buf lint finds a fault in api/proto, or when buf
# breaking finds a change that breaks clients of main's protos.
check-generated:
	GO=$(GO) bash scripts/check-generated.sh

# proto regenerates the Go code of api/proto with pinned buf, protoc-gen-go and
# protoc-gen-go-grpc (installed into bin/tools from the Go module proxy); commit the result.
proto:
	GO=$(GO) bash scripts/proto.sh generate

# tools installs what the tests drive from outside Go: curl and jq run the README tour,
# grpcurl (pinned, into bin/tools) calls the gRPC API, and the graphql-http audit and a
# graphql-ws client (npm, scripts/graphql) test /graphql.
tools:
	bash scripts/ensure-tools.sh curl jq
	GO=$(GO) bash scripts/go-tools.sh grpcurl
	bash scripts/graphql-tools.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/plaza ./cmd/plaza

run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/plaza

# make bench measures Plaza against a bare net/http baseline with wrk (bench/, its own Go
# module so that its charting libraries are no dependency of the product; written to
# docs/benchmarks.md, .svg and .json); with PostgreSQL installed it measures a second run
# on PostgreSQL + Redis under scripts/with-services.sh. Not part of make test or CI.
bench:
	cd bench && $(GO) build -o ../bin/plazabench ./cmd/plazabench
	@if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then \
		bash scripts/with-services.sh bin/plazabench; \
	else \
		echo "bench: PostgreSQL is not installed; measuring SQLite only" >&2; bin/plazabench; \
	fi

# demo-cluster starts PostgreSQL, Redis, three instances and two gateways on loopback
# (gateways on :8000 and :8010) and stops them after DEMO_SECONDS (600) or on Ctrl-C.
demo-cluster: build
	bash scripts/with-services.sh bash scripts/demo-cluster.sh
