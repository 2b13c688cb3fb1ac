from __future__ import annotations

import copy
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


def _bad(mutate) -> str:
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_config_fails_with_one_line_naming_the_key() -> None:
    assert _bad(lambda c: c["model_list"][0]["litellm_params"].pop("model")).startswith(
        "model_list.0.litellm_params.model:")
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
