"""LiteLLM proxy config files (tests/data/litellm_configs/) load with RouteIQ's meaning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.config import ConfigError, load_config, parse_config
from app.config_litellm import translate

CONFIGS = Path(__file__).parents[2] / "data" / "litellm_configs"
SECRETS = ("OPENAI_API_KEY", "AZURE_API_KEY", "AZURE_API_KEY_EU", "ANTHROPIC_API_KEY")


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, "x")
    for name in ("REDIS_HOST", "REDIS_PASSWORD"):  # only ignored keys name them: they need not be set
        monkeypatch.delenv(name, raising=False)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "routeiq.config" and r.levelno == logging.WARNING]


def test_basic_file_moves_litellm_settings_and_warns_once_per_ignored_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "routeiq.config"):
        cfg = load_config(CONFIGS / "proxy_basic.yaml")
    assert cfg.router_settings.num_retries == 3
    assert cfg.general_settings.request_timeout_s == 30
    assert [e.litellm_params.rpm for e in cfg.model_list] == [6, 1440, None]  # top-level rpm moved in
    assert cfg.model_list[0].litellm_params.model_extra["drop_params"] is True  # type: ignore[index]
    assert _warnings(caplog) == [
        "config: litellm_settings.set_verbose: no meaning in RouteIQ; ignored",
        "config: litellm_settings.success_callback: no meaning in RouteIQ; ignored",
        "config: general_settings.alerting: no meaning in RouteIQ; ignored",
    ]


def test_router_file_strategy_aliases_fallbacks_and_limits(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "routeiq.config"):
        cfg = load_config(CONFIGS / "proxy_router.yaml")
    rs = cfg.router_settings
    assert rs.routing_strategy == "usage-based-routing-v2"
    assert rs.cooldown_time_s == 30
    assert {a: (v.model, v.hidden) for a, v in rs.aliases_of_models().items()} == {
        "gpt-4": ("gpt-4o", False), "gpt-4-legacy": ("gpt-4o", True)}
    assert rs.fallback_chain("gpt-3.5-turbo") == ("gpt-4o",)
    assert rs.fallback_chain("gpt-3.5-turbo", "context_window_fallbacks") == ("gpt-3.5-turbo-16k",)
    assert rs.fallback_chain("gpt-3.5-turbo", "content_policy_fallbacks") == ("gpt-4o",)
    assert [(e.litellm_params.rpm, e.litellm_params.tpm) for e in cfg.model_list[:2]] == [(1000, 100000),
                                                                                          (2000, 200000)]
    assert sorted(_warnings(caplog)) == sorted(f"config: {k}: no meaning in RouteIQ; ignored" for k in (
        "litellm_settings.cache", "litellm_settings.cache_params", "router_settings.enable_pre_call_checks",
        "router_settings.redis_host", "router_settings.redis_password", "router_settings.redis_port"))


def test_wildcard_file_loads() -> None:
    cfg = load_config(CONFIGS / "proxy_wildcard.yaml")
    assert [e.model_name for e in cfg.model_list] == ["anthropic/*", "openai/*", "*"]


def test_environment_variables_set_unset_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTEIQ_T_OPENAI_KEY", raising=False)
    monkeypatch.setenv("ROUTEIQ_T_ALREADY_SET", "from-the-environment")
    cfg = load_config(CONFIGS / "proxy_environment.yaml")
    import os

    assert os.environ["ROUTEIQ_T_OPENAI_KEY"] == "sk-from-the-file"  # resolves os.environ/ references
    assert cfg.environment_variables == {"ROUTEIQ_T_OPENAI_KEY": "sk-from-the-file",
                                         "ROUTEIQ_T_ALREADY_SET": "from-the-environment"}
    assert cfg.router_settings.routing_strategy == "latency-based-routing"
    monkeypatch.delenv("ROUTEIQ_T_OPENAI_KEY")


def test_broken_file_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "proxy_broken.yaml")
    problems = err.value.problems
    assert len(problems) == 6, problems
    joined = "\n".join(problems)
    for part in ("environment_variables: expected a mapping", "litellm_settings.drop_params",
                 "model_list[0].litellm_params.rpm", "router_settings.num_retries",
                 "router_settings.routing_strategy", "router_settings.cooldown_time_s"):
        assert part in joined


BASE = {"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o"}},
                       {"model_name": "openai/*", "litellm_params": {"model": "openai/*"}}]}


def test_alias_must_name_a_model_and_not_shadow_one() -> None:
    raw = {**BASE, "router_settings": {"model_group_alias": {"gpt-4": "nope", "gpt-4o": "gpt-4o"}}}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert sorted(err.value.problems) == [
        "router_settings.model_group_alias.gpt-4: unknown model 'nope'",
        "router_settings.model_group_alias.gpt-4o: already a model or router name"]


def test_fallbacks_may_name_models_a_wildcard_serves() -> None:
    cfg = parse_config({**BASE, "router_settings": {"context_window_fallbacks": [{"gpt-4o": ["openai/gpt-4.1"]}]}})
    assert cfg.router_settings.fallback_chain("gpt-4o", "context_window_fallbacks") == ("openai/gpt-4.1",)
    with pytest.raises(ConfigError, match="unknown model 'other'"):
        parse_config({**BASE, "router_settings": {"content_policy_fallbacks": [{"gpt-4o": ["other"]}]}})


def test_cooldown_time_and_cooldown_time_s_together_is_an_error() -> None:
    with pytest.raises(ConfigError, match="both set"):
        parse_config({**BASE, "router_settings": {"cooldown_time": 1, "cooldown_time_s": 2}})


def test_rpm_in_entry_and_params_is_an_error() -> None:
    raw = {"model_list": [{"model_name": "m", "rpm": 1, "litellm_params": {"model": "openai/m", "rpm": 2}}]}
    assert translate(raw).problems == ["model_list[0]: rpm set both in the entry and in litellm_params"]


def test_unknown_keys_still_fail() -> None:
    with pytest.raises(ConfigError, match=r"router_settings\.routing_stratgy"):
        parse_config({**BASE, "router_settings": {"routing_stratgy": "least-busy"}})


def test_translate_leaves_the_input_alone() -> None:
    raw = {**BASE, "litellm_settings": {"num_retries": 1}}
    translate(raw)
    assert "litellm_settings" in raw


def test_routeiq_key_wins_over_litellm_settings() -> None:
    cfg = parse_config({**BASE, "router_settings": {"num_retries": 5}, "litellm_settings": {"num_retries": 1}})
    assert cfg.router_settings.num_retries == 5


def test_router_settings_timeout_is_the_request_timeout() -> None:
    cfg = parse_config({**BASE, "router_settings": {"timeout": 12}})
    assert cfg.general_settings.request_timeout_s == 12
    cfg = parse_config({**BASE, "router_settings": {"timeout": 12}, "litellm_settings": {"request_timeout": 7}})
    assert cfg.general_settings.request_timeout_s == 7
