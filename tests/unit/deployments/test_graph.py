"""The graph as bound, checked without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, parse_config
from deployments.graph import INGRESS, ROUTER_SCORING, build_app, build_graph, provider_deployment_name
from devtools.configs import gateway_config

ROOT = Path(__file__).resolve().parents[3]


def test_graph_binds_one_provider_deployment_per_group() -> None:
    ingress = build_graph(parse_config(gateway_config("http://x/v1")))._bound_deployment
    assert ingress.name == INGRESS
    _, router, providers, _ = ingress.init_args
    assert router._bound_deployment.name == ROUTER_SCORING
    assert {g: p._bound_deployment.name for g, p in providers.items()} == {
        g: provider_deployment_name(g) for g in ("small", "large", "slow")}


def test_deployments_use_fractional_cpus_and_high_concurrency() -> None:
    ingress = build_graph(parse_config(gateway_config("http://x/v1")))._bound_deployment
    _, router, providers, _ = ingress.init_args
    for dep in (ingress, router._bound_deployment, *(p._bound_deployment for p in providers.values())):
        assert dep.ray_actor_options["num_cpus"] < 1
        assert dep._deployment_config.max_ongoing_requests >= 100


def test_overrides_replace_defaults() -> None:
    app = build_graph(parse_config(gateway_config("http://x/v1")), overrides={INGRESS: {"num_replicas": 2}})
    assert app._bound_deployment.num_replicas == 2


def test_build_app_from_demo_config_resolves_artifacts_against_the_project() -> None:
    ingress = build_app({"config_path": str(ROOT / "configs/demo.yaml")})._bound_deployment
    specs = ingress.init_args[1]._bound_deployment.init_args[0]
    learned = [s for s in specs if s.strategy == "learned"]
    assert learned and all(Path(s.artifact).is_absolute() for s in learned)


def test_build_app_without_config_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="config_path"):
        build_app({})


def test_the_scorer_is_bound_with_its_registry_settings() -> None:
    cfg = gateway_config("http://x/v1")
    cfg["router_settings"]["registry"] = {"endpoint_url": "http://minio:9000", "poll_interval_s": 3}
    ingress = build_graph(parse_config(cfg))._bound_deployment
    sync = ingress.init_args[1]._bound_deployment.init_kwargs["sync"]
    assert sync.registry.endpoint_url == "http://minio:9000" and sync.registry.poll_interval_s == 3


def test_environment_variables_reach_every_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTEIQ_T_GRAPH_ENV", raising=False)
    raw = {**gateway_config("http://x/v1"), "environment_variables": {"ROUTEIQ_T_GRAPH_ENV": "v"}}
    overrides = {INGRESS: {"ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": {"OTHER": "1"}}}}}
    ingress = build_graph(parse_config(raw), overrides=overrides)._bound_deployment
    _, router, providers, _ = ingress.init_args
    assert ingress.ray_actor_options["runtime_env"]["env_vars"] == {"ROUTEIQ_T_GRAPH_ENV": "v", "OTHER": "1"}
    assert ingress.ray_actor_options["num_cpus"] == 0.1
    for dep in (router._bound_deployment, *(p._bound_deployment for p in providers.values())):
        assert dep.ray_actor_options["runtime_env"]["env_vars"] == {"ROUTEIQ_T_GRAPH_ENV": "v"}
    monkeypatch.delenv("ROUTEIQ_T_GRAPH_ENV")


def test_routers_scored_in_the_ingress_leave_the_scorer_and_with_none_left_it_is_not_deployed() -> None:
    cfg = gateway_config("http://x/v1")
    auto, shuffle = cfg["router_settings"]["routers"]
    auto["scoring"] = "ingress"
    ingress = build_graph(parse_config(cfg))._bound_deployment
    scorer = ingress.init_args[1]._bound_deployment
    assert [s.name for s in scorer.init_args[0]] == ["shuffle"]
    assert [s.name for s in ingress.init_kwargs["local_routers"]] == ["auto"]
    shuffle["scoring"] = "ingress"
    ingress = build_graph(parse_config(cfg))._bound_deployment
    assert ingress.init_args[1] is None
    assert [s.name for s in ingress.init_kwargs["local_routers"]] == ["auto", "shuffle"]


def test_a_non_learned_router_decides_in_the_ingress_unless_configured_otherwise(tmp_path: Path) -> None:
    cfg = gateway_config("http://x/v1")
    auto, shuffle = cfg["router_settings"]["routers"]
    del auto["scoring"], shuffle["scoring"]  # the defaults: both non-learned
    ingress = build_graph(parse_config(cfg))._bound_deployment
    assert ingress.init_args[1] is None  # no router-scoring deployment at all
    assert [s.name for s in ingress.init_kwargs["local_routers"]] == ["auto", "shuffle"]
    artifact = tmp_path / "router"
    artifact.mkdir()
    auto.update(strategy="learned", artifact=str(artifact))  # a learned router keeps its replica by default
    ingress = build_graph(parse_config(cfg))._bound_deployment
    assert [s.name for s in ingress.init_args[1]._bound_deployment.init_args[0]] == ["auto"]
    assert [s.name for s in ingress.init_kwargs["local_routers"]] == ["shuffle"]


def test_scoring_is_replica_or_ingress() -> None:
    cfg = gateway_config("http://x/v1")
    cfg["router_settings"]["routers"][0]["scoring"] = "gpu"
    with pytest.raises(ConfigError, match="scoring"):
        parse_config(cfg)
