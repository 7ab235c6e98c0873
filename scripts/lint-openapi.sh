#!/usr/bin/env bash
# lint-openapi.sh: lints api/openapi/openapi.yaml with Redocly CLI (recommended rules, as
# configured in api/openapi/redocly.yaml); warnings fail too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/node-tools.sh
out=$(tools/node_modules/.bin/redocly lint --config api/openapi/redocly.yaml --max-problems 50 api/openapi/openapi.yaml 2>&1) || { echo "$out" >&2; exit 1; }
if ! grep -q "Your API description is valid" <<<"$out" || grep -q "Warning was generated" <<<"$out"; then
	echo "$out" >&2
	echo "lint-openapi: api/openapi/openapi.yaml is not lint clean" >&2
	exit 1
fi
