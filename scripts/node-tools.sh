#!/usr/bin/env bash
# node-tools.sh: installs what make test drives from Node (tools/package.json, pinned by
# tools/package-lock.json: the OpenAPI linter, playwright-core, swagger-ui-dist) into
# tools/node_modules, once. Needs node and npm; installs Debian's nodejs and npm with
# apt-get when they are missing and we are root. Plaza itself never needs Node.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
	bash scripts/ensure-tools.sh node npm 2>/dev/null || {
		[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 ||
			{ echo "node-tools: node and npm are missing; install them" >&2; exit 1; }
		apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >/dev/null
	}
fi
# The lock file's hash marks what is installed, so a second run costs nothing.
stamp=tools/node_modules/.plaza-lock.sha256
want=$(sha256sum tools/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	(cd tools && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
	echo "$want" >"$stamp"
fi
