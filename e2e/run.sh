#!/usr/bin/env bash
# run.sh: the browser tests. Builds Plaza, serves it on a free loopback port with a fresh
# data dir (SQLite, demo catalog, an admin), and runs plaza.e2e.mjs against it in Debian's
# chromium, headless, driven by playwright-core. Installs what is missing when it can (root
# with apt-get); without a browser it skips, and fails under CI=true.
# PLAZA_E2E_SCREENSHOT=path also saves the README's screenshot there.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "e2e: installing chromium with apt-get" >&2
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } >/dev/null 2>&1 || true
	browser=$(command -v chromium || true)
fi
if [ -z "$browser" ]; then
	if [ "${CI:-}" = "true" ]; then
		echo "e2e: no chromium, and CI=true: failing" >&2
		exit 1
	fi
	echo "e2e: SKIP: chromium is not installed (apt-get install chromium)" >&2
	exit 0
fi
bash scripts/node-tools.sh

tmp=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

${GO:-go} build -o "$tmp/plaza" ./cmd/plaza
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PLAZA_E2E_URL="http://127.0.0.1:$port"
export PLAZA_E2E_ADMIN_EMAIL=admin@example.com PLAZA_E2E_ADMIN_PASSWORD='correct horse battery staple'
# Many browser contexts share 127.0.0.1, so the per-IP limit is raised above a page load
# of several contexts at once; limiting itself is tested in Go.
PLAZA_HTTP_ADDR="127.0.0.1:$port" PLAZA_DATA_DIR="$tmp/data" PLAZA_RATE_LIMIT=500 PLAZA_RATE_BURST=1000 \
	PLAZA_ADMIN_EMAIL="$PLAZA_E2E_ADMIN_EMAIL" PLAZA_ADMIN_PASSWORD="$PLAZA_E2E_ADMIN_PASSWORD" \
	PLAZA_LOG_LEVEL=warn "$tmp/plaza" serve >"$tmp/plaza.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	curl -fsS "$PLAZA_E2E_URL/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/plaza.log" >&2; exit 1; }
	sleep 0.2
done
PLAZA_E2E_BROWSER="$browser" node e2e/plaza.e2e.mjs || { echo "e2e: server log:" >&2; tail -n 30 "$tmp/plaza.log" >&2; exit 1; }
