#!/usr/bin/env bash
# Start the fake upstream the demo config points at, then the gateway in the foreground.
# Serve runs throughput-optimized with HAProxy in front of the ingress replicas
# (RAY_SERVE_THROUGHPUT_OPTIMIZED=1, RAY_SERVE_ENABLE_HA_PROXY=1, set by the Makefile):
# bench/RESULTS.md shows why.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m tests.fake_upstream --port 9100 --tokens 24 &
upstream=$!
trap 'kill $upstream 2>/dev/null || true' EXIT INT TERM
.venv/bin/serve run configs/serve.demo.yaml
