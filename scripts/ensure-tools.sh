#!/usr/bin/env bash
# ensure-tools.sh CMD...: makes sure each command is on PATH, installing its Debian package
# with apt-get when it is missing and we are root (the README tour test needs curl and jq).
# Exits non-zero naming what is missing otherwise.
set -euo pipefail
missing=()
for c in "$@"; do
	command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-tools: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "ensure-tools: installing ${missing[*]} with apt-get" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "ensure-tools: could not install ${missing[*]}" >&2
	exit 1
fi
