"""Complete validation of a version (what a replica runs before applying; ``routeiq config validate``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import build_cli
from app.config import ConfigError
from app.config_sync.validate import validate_text
from devtools.configs import CHEAP, MID, gateway_config
from devtools.s3_server import S3Server
from tests.registry_support import make_artifact, new_registry

NO_STORES = {"access": {"enabled": False}, "decisions": {"enabled": False}}


def base() -> dict[str, Any]:
    return gateway_config("http://127.0.0.1:1/v1", **NO_STORES)


def learned(raw: dict[str, Any], artifact: str, *candidates: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["router_settings"]["routers"].append(
        {"name": "learned", "strategy": "learned", "artifact": artifact, "candidates": list(candidates)})
    return raw


def problems(raw: dict[str, Any], root: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_text(yaml.safe_dump(raw), "new.yaml", root)
    return info.value.problems


def test_a_valid_config_passes() -> None:
    cfg = validate_text(yaml.safe_dump(base()), "new.yaml")
    assert len(cfg.model_list) == 5


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTEIQ_TEST_UNSET_KEY", raising=False)
    raw = learned(base(), "/nonexistent/router-artifact", CHEAP)
    raw["general_settings"]["no_such_setting"] = 1
    raw["model_list"][0]["litellm_params"]["api_key"] = "os.environ/ROUTEIQ_TEST_UNSET_KEY"
    found = problems(raw)
    assert "general_settings.no_such_setting: Extra inputs are not permitted" in found
    assert "model_list[0].litellm_params.api_key: environment variable ROUTEIQ_TEST_UNSET_KEY is not set" in found


def test_an_artifact_that_does_not_verify_is_refused(tmp_path: Path) -> None:
    found = problems(learned(base(), str(tmp_path / "missing"), CHEAP))
    assert len(found) == 1 and found[0].startswith("router_settings.routers[2].artifact: ")
    art = make_artifact(tmp_path / "art")
    (art / "weights.safetensors").write_bytes(b"tampered")
    assert problems(learned(base(), str(art), CHEAP))[0].startswith("router_settings.routers[2].artifact: ")


def test_a_candidate_the_learned_router_does_not_know_is_refused(tmp_path: Path) -> None:
    art = make_artifact(tmp_path / "art")  # knows models "a" and "b"
    assert problems(learned(base(), str(art), CHEAP, MID)) == [
        f"router_settings.routers[2]: candidate {name!r} is unknown to the router's artifact (train it on the "
        "model, or give it a model_info.router_profile the artifact knows)" for name in (CHEAP, MID)]
    raw = learned(base(), "art", CHEAP)  # relative: from root; a profile the artifact knows covers it
    raw["model_list"][0]["model_info"]["router_profile"] = "a"
    assert validate_text(yaml.safe_dump(raw), "new.yaml", tmp_path).router_settings.routers[2].name == "learned"


def test_a_registry_router_needs_a_promoted_version_that_verifies(s3_server: S3Server, tmp_path: Path) -> None:
    registry = new_registry(s3_server)
    raw = learned(base(), f"s3://{registry.location.bucket}/{registry.location.prefix}", CHEAP)
    raw["model_list"][0]["model_info"]["router_profile"] = "a"
    raw["router_settings"]["registry"] = {"endpoint_url": s3_server.url, "timeout_s": 2}
    found = problems(raw)
    assert len(found) == 1 and "router 'learned' has no promoted version" in found[0]
    info = registry.publish(make_artifact(tmp_path / "art"))
    registry.promote("learned", info.version)
    assert validate_text(yaml.safe_dump(raw), "new.yaml").router_settings.routers[2].artifact


def test_cli_validate_prints_one_line_per_problem_and_exits_1(tmp_path: Path, s3_server: S3Server) -> None:
    bad = base()
    bad["general_settings"]["no_such_setting"] = 1
    bad["router_settings"]["fallbacks"] = [{CHEAP: ["nope"]}]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    result = CliRunner().invoke(build_cli(), ["config", "validate", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "config error: general_settings.no_such_setting: Extra inputs are not permitted",
        "config error: router_settings.fallbacks[0]: unknown model 'nope'"]
    bucket = s3_server.new_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="gw.yaml", Body=yaml.safe_dump(base()).encode())
    ok = CliRunner().invoke(build_cli(), ["config", "validate", f"s3://{bucket}/gw.yaml",
                                          "--endpoint-url", s3_server.url])
    assert ok.exit_code == 0 and ok.stdout.strip() == f"s3://{bucket}/gw.yaml: ok (5 models, 2 routers)"
    missing = CliRunner().invoke(build_cli(), ["config", "validate", f"s3://{bucket}/nope.yaml",
                                               "--endpoint-url", s3_server.url])
    assert missing.exit_code == 1 and len(missing.stderr.splitlines()) == 1
    assert missing.stderr.startswith(f"config error: read s3://{bucket}/nope.yaml: ")


def test_cli_diff_prints_the_changes_and_how_they_apply(tmp_path: Path) -> None:
    old, new = base(), base()
    new["model_list"][1]["model_info"]["output_cost_per_token"] = 0.7e-6
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    result = CliRunner().invoke(build_cli(), ["config", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"~ model {MID}: model_info.output_cost_per_token 5e-07 -> 7e-07",
                                          "applies in place"]
    same = CliRunner().invoke(build_cli(), ["config", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "old.yaml")])
    assert same.stdout.strip() == "no differences"
