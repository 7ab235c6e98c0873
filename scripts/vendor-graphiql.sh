#!/usr/bin/env bash
# vendor-graphiql.sh: fetches GraphiQL and the React it runs on from the npm registry and
# copies their browser builds into internal/graphql/playground/assets, which the binary
# embeds: /playground then works with no internet access and loads nothing from a CDN.
# The files are committed; run this only to move to other versions (then commit the result).
# GraphiQL 3 is the last major with a UMD build (a single script, no bundler needed).
set -euo pipefail
cd "$(dirname "$0")/.."
GRAPHIQL=3.8.3
REACT=18.3.1
dest=internal/graphql/playground/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
	mkdir -p "$tmp/$pkg"
	tar -xzf "$tmp/$pkg.tgz" -C "$tmp/$pkg"
done
mkdir -p "$dest"
cp "$tmp/graphiql-$GRAPHIQL/package/graphiql.min.js" "$tmp/graphiql-$GRAPHIQL/package/graphiql.min.css" "$dest/"
cp "$tmp/react-$REACT/package/umd/react.production.min.js" "$dest/"
cp "$tmp/react-dom-$REACT/package/umd/react-dom.production.min.js" "$dest/"
{
	echo "graphiql $GRAPHIQL, react $REACT, react-dom $REACT (npm), fetched by scripts/vendor-graphiql.sh."
	echo "Licenses:"
	for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
		echo
		echo "== $pkg =="
		cat "$tmp/$pkg/package/LICENSE"
	done
} >"$dest/VERSIONS-AND-LICENSES.txt"
echo "vendor-graphiql: $dest updated" >&2
