#!/usr/bin/env bash
# with-services.sh CMD [ARGS...]
#
# Starts a throwaway PostgreSQL and a throwaway redis-server on free ports of 127.0.0.1,
# exports
#   PLAZA_TEST_POSTGRES_URL  postgres://plaza@127.0.0.1:PORT/postgres?sslmode=disable (superuser)
#   PLAZA_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
# runs CMD, then stops both and removes their data, also when CMD fails or the script is
# interrupted. Exits with CMD's status. A service that cannot start is an error, not a
# skip: the PostgreSQL and Redis test runs are not optional in CI.
#
# PostgreSQL comes from /usr/lib/postgresql/<highest version>/bin (or pg_ctl on PATH).
# redis-server is installed with apt-get when missing and running as root.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

log() { echo "with-services: $*" >&2; }
die() {
	log "$*"
	exit 1
}

tmp=""
pg_ctl=""
pgdata=""
pg_started=""
redis_pid=""

cleanup() {
	set +e
	if [ -n "$redis_pid" ]; then
		kill "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	if [ -n "$pg_started" ]; then
		as_pg "$pg_ctl" -D "$pgdata" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
			log "could not stop PostgreSQL (data in $pgdata)"
	fi
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# as_pg runs a PostgreSQL tool as a user it accepts: initdb and postgres refuse root.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# free_port prints a TCP port nothing listens on at 127.0.0.1 (right now).
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
		return
	fi
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	return 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plaza-services.XXXXXX")
chmod 755 "$tmp"

# --- PostgreSQL -------------------------------------------------------------------------

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$pg_bin" ] && [ -x "$pg_bin/pg_ctl" ]; then
	pg_ctl="$pg_bin/pg_ctl"
elif command -v pg_ctl >/dev/null 2>&1; then
	pg_bin=$(dirname "$(command -v pg_ctl)")
	pg_ctl="$pg_bin/pg_ctl"
else
	die "PostgreSQL not found (no /usr/lib/postgresql/*/bin, no pg_ctl on PATH); install postgresql"
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
	die "running as root but there is no 'postgres' user to run PostgreSQL as (initdb refuses root)"
fi

pgdir="$tmp/pg"
pgdata="$pgdir/data"
mkdir "$pgdir"
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$pgdir"
fi

if ! as_pg "$pg_bin/initdb" -D "$pgdata" -A trust -U plaza -E UTF8 --locale=C --no-sync \
	>"$tmp/initdb.log" 2>&1; then
	cat "$tmp/initdb.log" >&2
	die "initdb failed"
fi

pg_port=$(free_port) || die "no free port for PostgreSQL"
# Throwaway server: durability off for speed, enough connections for parallel tests.
as_pg tee -a "$pgdata/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pgdir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

if ! as_pg "$pg_ctl" -D "$pgdata" -l "$pgdir/postgres.log" -w -t 60 start >/dev/null; then
	pg_started=1 # it may be half up; stop it on exit
	cat "$pgdir/postgres.log" >&2 || true
	die "PostgreSQL did not start"
fi
pg_started=1
ready=""
for _ in $(seq 100); do
	if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U plaza -d postgres; then
		ready=1
		break
	fi
	sleep 0.1
done
[ -n "$ready" ] || die "PostgreSQL started but is not accepting connections on port $pg_port"

# --- Redis ------------------------------------------------------------------------------

if ! command -v redis-server >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "redis-server missing; installing it with apt-get"
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; } \
			>"$tmp/apt.log" 2>&1 || {
			tail -n 20 "$tmp/apt.log" >&2
			die "could not install redis-server"
		}
	else
		die "redis-server not found; install it (apt-get install redis-server)"
	fi
fi

redis_ping() {
	if command -v redis-cli >/dev/null 2>&1; then
		[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]
		return
	fi
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1"
		printf 'PING\r\n' >&3
		read -r -t 1 reply <&3
		[ "${reply%$'\r'}" = "+PONG" ]
	)
}

redis_port=$(free_port) || die "no free port for Redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
	--dir "$tmp" --logfile "$tmp/redis.log" &
redis_pid=$!
ready=""
for _ in $(seq 100); do
	if ! kill -0 "$redis_pid" 2>/dev/null; then
		cat "$tmp/redis.log" >&2 || true
		redis_pid=""
		die "redis-server exited at start"
	fi
	if redis_ping "$redis_port" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
[ -n "$ready" ] || die "redis-server is not answering PING on port $redis_port"

# --- CMD --------------------------------------------------------------------------------

export PLAZA_TEST_POSTGRES_URL="postgres://plaza@127.0.0.1:$pg_port/postgres?sslmode=disable"
export PLAZA_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on :$pg_port, Redis on :$redis_port"

# CMD runs in the background so a TERM or INT sent to this script is passed on to it at
# once (a foreground CMD would delay our traps until it finished). Background jobs of a
# script ignore INT, hence TERM for both; stdin stays the script's.
"$@" <&0 &
cmd_pid=$!
trap 'kill -TERM "$cmd_pid" 2>/dev/null; interrupted=130' INT
trap 'kill -TERM "$cmd_pid" 2>/dev/null; interrupted=143' TERM
interrupted=""
status=0
while :; do
	wait "$cmd_pid" && status=0 || status=$?
	kill -0 "$cmd_pid" 2>/dev/null || break
done
if [ -n "$interrupted" ]; then
	exit "$interrupted"
fi
exit "$status"
