#!/usr/bin/env bash
# Start the fake upstream the demo config points at, then the gateway in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m tests.fake_upstream --port 9100 --tokens 24 &
upstream=$!
trap 'kill $upstream 2>/dev/null || true' EXIT INT TERM
exec_serve() { .venv/bin/serve run configs/serve.demo.yaml; }
exec_serve
