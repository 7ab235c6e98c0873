#!/usr/bin/env bash
# graphql-tools.sh: installs the outside GraphQL clients make test drives (scripts/graphql:
# the graphql-http audit and a graphql-ws subscriber) with npm, at the versions of its
# package-lock.json, into scripts/graphql/node_modules (not committed). Node.js and npm are
# installed with apt-get when missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/graphql"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "graphql-tools: node and npm are missing; install them (apt-get install nodejs npm)" >&2
		exit 1
	fi
	echo "graphql-tools: installing nodejs and npm with apt-get" >&2
	apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >/dev/null
fi
# The copy of the lock file taken after the last install says whether it is current.
if cmp -s package-lock.json node_modules/.installed-lock.json 2>/dev/null; then
	exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.installed-lock.json
