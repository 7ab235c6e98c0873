#!/usr/bin/env bash
# go-tools.sh NAME...: installs the named Go tools, at the versions pinned below, into
# bin/tools with `go install` from the Go module proxy, and prints nothing when they are
# there already. The binaries are not committed (bin/ is ignored); the pins are, so every
# machine generates and tests with the same tools.
#   buf, protoc-gen-go, protoc-gen-go-grpc: make proto (scripts/proto.sh)
#   grpcurl: the gRPC test of make test (cmd/plaza, TestGRPCurl)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
tools=$PWD/bin/tools

pkg() {
	case "$1" in
	# protoc-gen-go is pinned to the google.golang.org/protobuf of go.mod: generated code
	# and the runtime it calls are one release.
	protoc-gen-go) echo google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 ;;
	protoc-gen-go-grpc) echo google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 ;;
	buf) echo github.com/bufbuild/buf/cmd/buf@v1.75.0 ;;
	grpcurl) echo github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4 ;;
	*) return 1 ;;
	esac
}

mkdir -p "$tools"
for name in "$@"; do
	p=$(pkg "$name") || { echo "go-tools: unknown tool $name" >&2; exit 2; }
	# A stamp per pinned version: a bumped pin reinstalls, an unchanged one costs nothing.
	stamp="$tools/.$name@${p##*@}"
	if [ -x "$tools/$name" ] && [ -e "$stamp" ]; then
		continue
	fi
	echo "go-tools: go install $p" >&2
	GOBIN=$tools "$GO" install "$p"
	rm -f "$tools/.$name@"*
	touch "$stamp"
done
