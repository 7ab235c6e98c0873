#!/usr/bin/env bash
# demo-cluster.sh — run under scripts/with-services.sh (make demo-cluster does): three
# `plaza serve` instances and two `plaza gateway`s on loopback, over the throwaway
# PostgreSQL and Redis. Stops after DEMO_SECONDS (default 600) or on Ctrl-C.
set -euo pipefail

bin=${PLAZA_BIN:-bin/plaza}
secs=${DEMO_SECONDS:-600}
pids=()
stop() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "demo-cluster: stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM

export DATABASE_URL=$PLAZA_TEST_POSTGRES_URL REDIS_URL=$PLAZA_TEST_REDIS_URL
export PLAZA_JWT_SECRET=${PLAZA_JWT_SECRET:-demo-cluster-secret-please-change-0123456789}
export PLAZA_ADMIN_EMAIL=admin@example.com PLAZA_ADMIN_PASSWORD='correct horse battery staple'
export PLAZA_DISCOVERY_TTL=5s PLAZA_LOG_LEVEL=warn
logs=$(mktemp -d)
for i in 1 2 3; do
	PLAZA_HTTP_ADDR=127.0.0.1:808$i PLAZA_GRPC_ADDR=127.0.0.1:5006$i PLAZA_DATA_DIR=$logs/data$i \
		PLAZA_RATE_LIMIT=0 PLAZA_TRUSTED_PROXIES=127.0.0.1/32 "$bin" serve 2>"$logs/instance$i.log" &
	pids+=($!)
done
for i in 1 2 3; do
	until curl -fsS -o /dev/null "127.0.0.1:808$i/readyz" 2>/dev/null; do sleep 0.2; done
done
PLAZA_GATEWAY_ADDR=127.0.0.1:8000 PLAZA_GATEWAY_GRPC_ADDR=127.0.0.1:8001 "$bin" gateway 2>"$logs/gateway1.log" &
pids+=($!)
PLAZA_GATEWAY_ADDR=127.0.0.1:8010 PLAZA_GATEWAY_GRPC_ADDR=127.0.0.1:8011 "$bin" gateway 2>"$logs/gateway2.log" &
pids+=($!)
for p in 8000 8010; do
	until curl -fsS -o /dev/null "127.0.0.1:$p/readyz" 2>/dev/null; do sleep 0.2; done
done
"$bin" instances
cat <<MSG

demo-cluster: gateways on http://127.0.0.1:8000 (gRPC :8001) and http://127.0.0.1:8010 (gRPC :8011);
instances on :8081-8083; logs in $logs. Try:
  curl -s 127.0.0.1:8000/api/products?limit=2
  curl -s 127.0.0.1:8000/metrics | grep plaza_gateway_upstream_available
  kill one instance (its pid: ${pids[0]}) and watch the gateways carry on.
Stopping in ${secs}s, or on Ctrl-C.
MSG
sleep "$secs"
