#!/usr/bin/env bash
# proto.sh generate | check
#
# generate: writes the Go code of api/proto (protoc-gen-go, protoc-gen-go-grpc through buf's
# own compiler, so no protoc is needed) next to the .proto files. `go generate ./...` and
# `make proto` run it; the result is committed.
# check: `buf lint` with buf's default rules, and `buf breaking` against the protos of the
# main branch, so a change that would break deployed clients fails make test. When main
# has no protos yet (the change that introduces them) there is nothing to break, and the
# check says it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
bash scripts/go-tools.sh buf protoc-gen-go protoc-gen-go-grpc
buf=$PWD/bin/tools/buf

case "${1:-}" in
generate)
	cd api/proto
	# Stale files of a removed .proto must not survive a regeneration.
	find plaza -name '*.pb.go' -delete
	"$buf" generate
	;;
check)
	(cd api/proto && "$buf" lint)
	base=""
	for ref in main origin/main; do
		if git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
			base=$ref
			break
		fi
	done
	[ -n "$base" ] || { echo "proto: no main branch to check breaking changes against" >&2; exit 1; }
	if ! git cat-file -e "$base:api/proto/buf.yaml" 2>/dev/null; then
		echo "proto: $base has no api/proto yet; breaking-change check skipped (nothing to break)" >&2
		exit 0
	fi
	# The protos as main has them, from git itself: works in worktrees and shallow
	# checkouts alike.
	against=$(mktemp -d)
	trap 'rm -rf "$against"' EXIT
	git archive "$base" api/proto | tar -x -C "$against"
	(cd api/proto && "$buf" breaking --against "$against/api/proto")
	;;
*)
	echo "usage: $0 generate | check" >&2
	exit 2
	;;
esac
