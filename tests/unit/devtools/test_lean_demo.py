"""``make run-lean``'s configs and router (devtools/lean_demo.py), checked without starting Ray."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from app.config import parse_config
from deployments.graph import INGRESS, build_app, provider_deployment_name
from devtools.lean_demo import KEPT, LeanDemoError, ensure_router, write_configs

ROOT = Path(__file__).resolve().parents[3]


def _trainer(tmp_path: Path, body: str) -> Path:
    """An executable standing in for ``routeiq`` (the real CLI is tested in tests/unit/router_models)."""
    script = tmp_path / "routeiq"
    script.write_text(f"#!/usr/bin/env bash\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_lean_gateway_is_the_demo_in_one_group_with_every_router_in_the_ingress(tmp_path: Path) -> None:
    router = tmp_path / "router"
    serve_path = write_configs(router, tmp_path / "lean", ROOT)
    serve = yaml.safe_load(serve_path.read_text())
    app = serve["applications"][0]
    gateway_path = Path(app["args"]["config_path"])
    lean = parse_config(yaml.safe_load(gateway_path.read_text()))
    demo = parse_config(yaml.safe_load((ROOT / "configs/demo.yaml").read_text()))

    assert [m.model_name for m in lean.model_list] == [m.model_name for m in demo.model_list]
    assert [g.name for g in lean.groups()] == ["small"]
    assert {r.name: r.scoring for r in lean.router_settings.routers} == {"auto": "ingress", "cheapest": "ingress"}
    assert next(r for r in lean.router_settings.routers if r.name == "auto").artifact == str(router.resolve())
    assert lean.general_settings == demo.general_settings
    demo_deployments = {d["name"]: d for d in yaml.safe_load(
        (ROOT / "configs/serve.demo.yaml").read_text())["applications"][0]["deployments"]}
    assert {d["name"]: d for d in app["deployments"]} == {n: demo_deployments[n] for n in KEPT}


def test_the_lean_graph_builds_exactly_the_deployments_its_serve_config_tunes(tmp_path: Path) -> None:
    serve = yaml.safe_load(write_configs(tmp_path / "router", tmp_path / "lean", ROOT).read_text())
    ingress = build_app(serve["applications"][0]["args"])._bound_deployment
    _, scorer, providers, _ = ingress.init_args
    assert scorer is None  # no RouterScoring deployment
    built = {ingress.name, *(p._bound_deployment.name for p in providers.values())}
    assert built == KEPT == {INGRESS, provider_deployment_name("small")}
    assert [s.name for s in ingress.init_kwargs["local_routers"]] == ["auto", "cheapest"]


def test_an_existing_router_is_used_as_it_is(tmp_path: Path) -> None:
    router = tmp_path / "static"
    router.mkdir()
    (router / "manifest.json").write_text("{}")
    assert ensure_router(router, routeiq=tmp_path / "absent") == router


def test_a_missing_router_is_trained_into_place(tmp_path: Path) -> None:
    args = tmp_path / "args"
    trainer = _trainer(tmp_path, f'echo "$@" > {args}; out="${{@: -1}}"; mkdir -p "$out"\n'
                                 'echo {} > "$out/manifest.json"')
    router = tmp_path / "routers" / "static"
    assert ensure_router(router, routeiq=trainer) == router
    assert (router / "manifest.json").is_file() and not router.with_name("static.partial").exists()
    assert args.read_text().split()[:4] == ["train", "--embedder", "static", "--out"]


def test_a_failed_training_is_one_line_and_leaves_nothing_behind(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 'mkdir -p "${@: -1}"; exit 3')
    router = tmp_path / "static"
    with pytest.raises(LeanDemoError, match=r"failed \(exit 3\)") as err:
        ensure_router(router, routeiq=trainer)
    assert "\n" not in str(err.value)
    assert not router.exists() and not router.with_name("static.partial").exists()
    with pytest.raises(LeanDemoError, match="make install-train"):
        ensure_router(router, routeiq=tmp_path / "absent")
