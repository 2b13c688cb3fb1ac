"""`make run` keeps the demo's listeners on loopback: Serve's HAProxy and Ray's own ports.

Ray 2.60's HAProxy template binds its stats page and Prometheus frontend on every
interface and has no address setting, so scripts/run-demo.sh runs HAProxy through
scripts/haproxy-loopback.sh. These tests render Ray's real template with the demo's
Serve config, pass it through that wrapper as Serve would start HAProxy, and fail if any
``bind`` is left on a non-loopback address; and they fail if the run script stops
wiring the wrapper (or Ray's loopback mode) in.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RUN_DEMO = ROOT / "scripts" / "run-demo.sh"
WRAPPER = ROOT / "scripts" / "haproxy-loopback.sh"
LOOPBACK = {"127.0.0.1", "::1", "[::1]"}


def _binds(config: str) -> dict[str, list[str]]:
    """section header -> the addresses of its `bind` lines."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in config.splitlines():
        if line and not line[0].isspace():
            section = line.strip()
        elif m := re.match(r"\s+bind\s+(\S+)", line):
            out.setdefault(section, []).append(m.group(1))
    return out


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def test_the_run_target_and_script_wire_the_wrapper_and_ray_loopback_mode() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:.*\n(\t.*\n)*\t@?RAY_SERVE_ENABLE_HA_PROXY=1 bash scripts/run-demo\.sh", makefile, re.M)
    script = RUN_DEMO.read_text()
    assert 'export RAY_SERVE_HAPROXY_BINARY_PATH="$PWD/scripts/haproxy-loopback.sh"' in script
    assert "export ROUTEIQ_HAPROXY_BINARY" in script
    assert re.search(r"^export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0$", script, re.M)
    assert re.search(r"^  one-machine\) \.venv/bin/python -m deployments\.run_local ", script, re.M), \
        "make run ships the one-machine Ray profile (deployments/run_local.py: its own Ray, no dashboard)"
    assert "serve run --address local " in script, "the demo never joins a Ray cluster it did not start"
    assert os.access(WRAPPER, os.X_OK), "Serve refuses a RAY_SERVE_HAPROXY_BINARY_PATH that is not executable"


@pytest.fixture
def rendered_demo_config(tmp_path: Path) -> Path:
    """Ray's HAProxy config for the demo's http_options, written the way Serve writes it."""
    from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig
    from ray.serve.config import HTTPOptions

    http = yaml.safe_load((ROOT / "configs" / "serve.demo.yaml").read_text())["http_options"]
    cfg = HAProxyConfig(
        http_options=HTTPOptions(**http),
        socket_path=str(tmp_path / "admin.sock"),
        server_state_base=str(tmp_path),
        server_state_file=str(tmp_path / "server-state"),
        metrics_socket_path=str(tmp_path / "metrics.sock"),
    )
    path = tmp_path / "haproxy.cfg"
    HAProxyApi(cfg=cfg, config_file_path=str(path))._generate_config_file_internal()
    return path


def test_every_haproxy_listener_of_the_demo_is_on_loopback(rendered_demo_config: Path, tmp_path: Path) -> None:
    fake = tmp_path / "haproxy"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\n')
    fake.chmod(0o755)
    args = ["-db", "-f", str(rendered_demo_config), "-dR", "-sf", "123"]
    env = {**os.environ, "ROUTEIQ_HAPROXY_BINARY": str(fake)}
    subprocess.run([str(WRAPPER), *args], env=env, check=True, timeout=30)

    assert (tmp_path / "haproxy.args").read_text().split() == args, "HAProxy gets Serve's arguments unchanged"
    binds = _binds(rendered_demo_config.read_text())
    assert {"listen stats", "frontend prometheus", "frontend http_frontend"} <= binds.keys()
    for section, addresses in binds.items():
        for address in addresses:
            assert _host(address) in LOOPBACK, f"{section}: `bind {address}` is reachable from other machines"


def test_the_wrapper_refuses_to_run_without_the_real_binary(rendered_demo_config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ROUTEIQ_HAPROXY_BINARY"}
    out = subprocess.run([str(WRAPPER), "-f", str(rendered_demo_config)], env=env, capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.returncode != 0 and "ROUTEIQ_HAPROXY_BINARY" in out.stderr
