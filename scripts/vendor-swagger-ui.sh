#!/usr/bin/env bash
# vendor-swagger-ui.sh: copies swagger-ui-dist (its version pinned in tools/package.json)
# into internal/webui/swagger, where the binary embeds it; the copy is committed, so Swagger
# UI works offline and building Plaza needs no Node. Run it after changing the version.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/node-tools.sh
src=tools/node_modules/swagger-ui-dist
dst=internal/webui/swagger
for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do
	cp "$src/$f" "$dst/$f"
done
node -p 'require("./'"$src"'/package.json").version' >"$dst/VERSION"
