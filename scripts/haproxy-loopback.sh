#!/usr/bin/env bash
# Serve's HAProxy for `make run`, with every listener on loopback.
#
# scripts/run-demo.sh points RAY_SERVE_HAPROXY_BINARY_PATH here. Ray 2.60's HAProxy
# template binds the stats page (`listen stats`, `bind *:8404`) and the Prometheus
# frontend (`bind :9101`) on all interfaces, and offers a setting for their ports only,
# not their address. Serve writes the config, then runs `<binary> -db -f <config> ...`
# (again with `-sf` on every reload): this rewrites each wildcard `bind` of that config
# to 127.0.0.1 in place, under the lock Serve writes it with, then execs the real
# HAProxy ($ROUTEIQ_HAPROXY_BINARY) with the same arguments. In place, because Serve
# finds its HAProxy processes by the config path in their command line.
# tests/unit/scripts/test_run_demo.py renders Ray's template and checks the result.
set -euo pipefail
real="${ROUTEIQ_HAPROXY_BINARY:?ROUTEIQ_HAPROXY_BINARY must name the real haproxy binary}"
config=""
prev=""
for arg in "$@"; do
  [[ $prev == -f ]] && config=$arg
  prev=$arg
done
if [[ -n $config && -f $config ]]; then
  # `bind :P`, `bind *:P`, `bind 0.0.0.0:P`, `bind :::P`, `bind [::]:P` -> `bind 127.0.0.1:P`
  flock "$config.lock" sed -i -E \
    's/^([[:space:]]*bind[[:space:]]+)(\*|0\.0\.0\.0|::|\[::\])?:([0-9]+)/\1127.0.0.1:\3/' "$config"
fi
exec "$real" "$@"
