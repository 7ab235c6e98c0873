#!/usr/bin/env bash
# check-generated.sh: fails when `go mod tidy` or `go generate ./...` would change the tree,
# in the product's module and in the bench module (go generate regenerates the protobuf
# code too), and when the protos fail buf lint or break clients of main's (proto.sh check). Generated code and go.mod/go.sum are
# committed, so a change here is one somebody forgot to commit. It runs both for real and
# compares the tree before and after (uncommitted work is left as it was found, plus what
# the tools changed, which it lists).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
	{ echo "check-generated: not a git checkout; cannot tell what changed" >&2; exit 1; }

# state hashes every tracked change and every untracked, unignored file.
state() {
	{
		git diff HEAD --binary
		git ls-files -o --exclude-standard -z | xargs -0 -r sha256sum
	} | sha256sum
}

before=$(state)
for mod in . bench; do
	(cd "$mod" && "$GO" mod tidy && "$GO" generate ./...)
done
if [ "$(state)" != "$before" ]; then
	echo "check-generated: go mod tidy or go generate ./... changed the tree; commit the result:" >&2
	git status --short >&2
	git diff --stat >&2
	exit 1
fi
bash scripts/proto.sh check
