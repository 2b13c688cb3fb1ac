"""``deployments.run_local`` (what ``make run`` starts): a Ray of its own, no dashboard,
Serve's one-machine timers unless the operator set them, then Ray's own ``serve run``."""

from __future__ import annotations

import os
from typing import Any

import pytest
import ray
from ray.serve import scripts

from deployments import run_local


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Record what ``main`` asks of Ray and of ``serve run`` instead of starting them."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(ray, "init", lambda **kw: seen.setdefault("init", kw))
    monkeypatch.setattr(scripts.cli, "main", lambda args, prog_name: seen.setdefault("serve", (prog_name, args)))
    for key in run_local.ONE_MACHINE_ENV:  # set, then unset: undone after the test even if main sets it
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    return seen


def test_starts_its_own_ray_without_the_dashboard_then_serve_run(calls: dict[str, Any]) -> None:
    run_local.main(["configs/serve.demo.yaml", "--non-blocking"])
    assert calls["init"]["address"] == "local", "never joins a cluster it did not start"
    assert calls["init"]["include_dashboard"] is False
    assert calls["init"]["namespace"] == "serve", "serve run's namespace, or it would not find its controller"
    assert calls["serve"] == ("serve", ["run", "configs/serve.demo.yaml", "--non-blocking"])


def test_one_machine_timers_are_defaults_the_operator_overrides(calls: dict[str, Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", "0.2")
    run_local.main(["configs/serve.demo.yaml"])
    assert os.environ["RAY_SERVE_CONTROL_LOOP_INTERVAL_S"] == "0.2"
    assert os.environ["RAY_SERVE_METRICS_EXPORT_INTERVAL_MS"] == run_local.ONE_MACHINE_ENV[
        "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS"]


def test_no_config_is_one_usage_line(calls: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_local.main([])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("usage: python -m deployments.run_local")
    assert "init" not in calls
