from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from app.config import ConfigError, load_config, main, parse_config
from devtools.configs import gateway_config

ROOT = Path(__file__).resolve().parents[3]


def test_demo_config_loads() -> None:
    cfg = load_config(ROOT / "configs/demo.yaml")
    assert len({m.model_name for m in cfg.model_list}) >= 4
    assert {g.name for g in cfg.groups()} == {"small", "large"}
    assert any(r.name == "auto" for r in cfg.router_settings.routers)


def test_the_demo_scores_its_learned_router_in_the_replica_and_its_cost_first_one_in_the_ingress() -> None:
    cfg = load_config(ROOT / "configs/demo.yaml")  # neither says `scoring`: the defaults by strategy
    assert {r.name: r.scoring for r in cfg.router_settings.routers} == {"auto": "replica", "cheapest": "ingress"}


def test_an_explicit_scoring_wins_over_the_strategys_default() -> None:
    raw = gateway_config("http://127.0.0.1:1/v1")  # both routers say `scoring: replica`
    assert {r.scoring for r in parse_config(raw).router_settings.routers} == {"replica"}


def _bad(mutate) -> str:
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_config_fails_with_one_line_naming_the_key() -> None:
    assert _bad(lambda c: c["model_list"][0]["litellm_params"].pop("model")) == (
        "model_list[0].litellm_params.model: Field required")
    assert "unknown_key" in _bad(lambda c: c.update(unknown_key=1))
    assert "max_request_body_bytes" in _bad(lambda c: c["general_settings"].update(max_request_body_bytes=-1))
    assert "unknown model 'ghost'" in _bad(
        lambda c: c["router_settings"]["routers"][0].update(fallback_model="ghost"))
    assert "provider_group" in _bad(lambda c: c["model_list"][0].update(provider_group="nowhere"))


def test_missing_env_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    msg = _bad(lambda c: c["model_list"][0]["litellm_params"].update(api_key="os.environ/NO_SUCH_KEY"))
    assert msg == "model_list[0].litellm_params.api_key: environment variable NO_SUCH_KEY is not set"


def test_master_key_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1"))
    monkeypatch.setenv("ROUTEIQ_MASTER_KEY", "sk-from-env")
    assert cfg.master_key() == "sk-from-env"


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(ROOT / "configs/demo.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: []\n")
    assert main([str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: model_list:") and "\n" not in err


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.problems


def test_every_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["model_list"][0]["litellm_params"]["api_key"] = "os.environ/NO_SUCH_KEY"
    raw["model_list"][1]["litellm_params"]["api_key"] = f"file:{tmp_path}/missing"
    raw["model_list"][2]["litellm_params"].pop("model")
    raw["router_settings"]["routers"][0]["fallback_model"] = "ghost"
    expected = [
        "model_list[0].litellm_params.api_key: environment variable NO_SUCH_KEY is not set",
        f"model_list[1].litellm_params.api_key: secret file {tmp_path}/missing: No such file or directory",
        "model_list[2].litellm_params.model: Field required",
        "router_settings.routers[0]: unknown model 'ghost'",
    ]
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.problems == expected
    assert str(info.value) == "4 problems:\n" + "\n".join(f"  {p}" for p in expected)


def test_every_missing_env_var_and_every_field_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_SUCH_A", "NO_SUCH_B"):
        monkeypatch.delenv(name, raising=False)
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["model_list"][0]["litellm_params"]["api_key"] = "os.environ/NO_SUCH_A"
    raw["general_settings"]["redis_url"] = "os.environ/NO_SUCH_B"
    raw["general_settings"]["max_request_body_bytes"] = -1
    raw["general_settings"]["access"] = {"redis_prefix": ""}
    raw["unknown_key"] = 1
    assert _problems(raw) == [
        "model_list[0].litellm_params.api_key: environment variable NO_SUCH_A is not set",
        "general_settings.redis_url: environment variable NO_SUCH_B is not set",
        "general_settings.access.redis_prefix: String should have at least 1 character",
        "general_settings.max_request_body_bytes: Input should be greater than 0",
        "unknown_key: Extra inputs are not permitted",
    ]


def test_every_broken_reference_is_reported() -> None:
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    settings = raw["router_settings"]
    settings["routers"][0].update(name=raw["model_list"][0]["model_name"], strategy="learned")
    settings["routers"][1]["candidates"].append("ghost")
    settings["aliases"] = {"auto:cost": {"router": "nowhere", "lambda": 0.5}}
    settings["fallbacks"] = [{"phantom": [raw["model_list"][1]["model_name"]]}]
    raw["model_list"][3]["provider_group"] = "elsewhere"
    name = raw["model_list"][0]["model_name"]
    assert _problems(raw) == [
        f"router_settings.routers[0].name: {name!r} is also a model_name",
        "router_settings.routers[0].artifact: required for strategy learned",
        "router_settings.routers[1]: unknown model 'ghost'",
        "router_settings.aliases.auto:cost.router: unknown router 'nowhere'",
        "router_settings.fallbacks[0]: unknown model 'phantom'",
        "model_list[3].provider_group: 'elsewhere' is not declared",
    ]


def test_references_are_not_guessed_when_model_names_are_unreadable() -> None:
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["model_list"][0]["model_name"] = 7  # a field error; the routers naming models are not second-guessed
    assert _problems(raw) == ["model_list[0].model_name: Input should be a valid string"]
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["router_settings"]["routers"][0]["strategy"] = "magic"  # router_settings invalid: its references unchecked
    raw["router_settings"]["routers"][1]["candidates"] = ["ghost"]
    raw["model_list"][0]["provider_group"] = "elsewhere"
    assert [p.split(":")[0] for p in _problems(raw)] == [
        "router_settings.routers[0].strategy", "model_list[0].provider_group"]


def test_config_error_keeps_its_problems_through_pickle() -> None:
    err = pickle.loads(pickle.dumps(ConfigError("a: one", "b: two")))
    assert err.problems == ["a: one", "b: two"] and str(err) == "2 problems:\n  a: one\n  b: two"
    assert str(ConfigError("a: one")) == "a: one"


def test_cli_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: m\n    litellm_params: {}\nmystery: 1\n")
    assert main([str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "config error: 2 problems:",
        "  model_list[0].litellm_params.model: Field required",
        "  mystery: Extra inputs are not permitted",
    ]


def test_the_public_demo_key_only_works_in_the_demo(monkeypatch) -> None:
    from app.config import DEMO_MASTER_KEY, ConfigError

    monkeypatch.delenv("ROUTEIQ_MASTER_KEY", raising=False)
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", master_key=DEMO_MASTER_KEY))
    with pytest.raises(ConfigError, match="refused outside the demo"):
        cfg.master_key()
    assert parse_config(gateway_config("http://127.0.0.1:9/v1", master_key=DEMO_MASTER_KEY,
                                       demo=True)).master_key() == DEMO_MASTER_KEY


@pytest.mark.parametrize("artifact", ["router_models/pretrained/default", "/abs/dir", "file:///abs/dir",
                                      "s3://routers/prod", "s3://routers"])
def test_a_learned_router_artifact_is_a_path_file_url_or_registry(artifact: str) -> None:
    cfg = gateway_config("http://x/v1")
    cfg["router_settings"]["routers"][0].update(strategy="learned", artifact=artifact)
    assert parse_config(cfg).router_settings.routers[0].artifact == artifact


@pytest.mark.parametrize(("artifact", "why"), [("s3:///prefix", "no bucket"), ("https://x/y", "not supported")])
def test_an_artifact_url_of_another_form_fails_config_load_naming_the_field(artifact: str, why: str) -> None:
    cfg = gateway_config("http://x/v1")
    cfg["router_settings"]["routers"][0].update(strategy="learned", artifact=artifact)
    with pytest.raises(ConfigError, match=rf"router_settings\.routers\[0\]\.artifact: .*{why}"):
        parse_config(cfg)


def test_the_scorer_is_bound_with_the_registry_and_redis_settings_only() -> None:
    cfg = gateway_config("http://x/v1", redis_url="redis://cache:6380/0")
    cfg["router_settings"]["registry"] = {"endpoint_url": "http://minio:9000", "poll_interval_s": 2}
    sync = parse_config(cfg).scorer_sync_settings()
    assert sync.registry.endpoint_url == "http://minio:9000" and sync.registry.poll_interval_s == 2
    assert sync.redis_url == "redis://cache:6380/0" and sync.redis_prefix == "routeiq"
