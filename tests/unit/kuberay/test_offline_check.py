"""The pods' startup check fails clearly when something would reach out or is not baked in."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.kuberay.conftest import KUBERAY, ROOT

CHECK = KUBERAY / "offline_check.py"
spec = importlib.util.spec_from_file_location("offline_check", CHECK)
assert spec and spec.loader
offline_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(offline_check)


def test_outbound_lookups_and_connections_are_refused_and_recorded() -> None:
    with offline_check.no_outbound() as attempts:
        with pytest.raises(offline_check.OutboundAttemptError, match=r"huggingface\.co"):
            socket.getaddrinfo("huggingface.co", 443)
        with pytest.raises(offline_check.OutboundAttemptError), socket.socket() as s:
            s.connect(("192.0.2.1", 443))  # TEST-NET-1: refused before any packet is sent
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", 9)) != 0  # loopback is allowed (nothing listens)
    assert attempts == ["DNS lookup of huggingface.co", "192.0.2.1:443"]
    assert socket.getaddrinfo("127.0.0.1", 80)  # restored


def _config(tmp_path: Path, artifact: Path) -> Path:
    key = tmp_path / "key"
    key.write_text("sk-check\n")
    text = (KUBERAY / "base" / "gateway.yaml").read_text()
    for ref in ("/run/secrets/routeiq-providers/upstream-api-key", "/run/secrets/routeiq/master-key"):
        text = text.replace(f"file:{ref}", f"file:{key}")
    # Only parsed, never connected; port 1, not the machine's own servers.
    for name, url in (("redis-url", "redis://127.0.0.1:1/0"), ("postgres-url", "postgresql://postgres@127.0.0.1:1/test")):
        (tmp_path / name).write_text(url + "\n")
        text = text.replace(f"file:/run/secrets/routeiq/{name}", f"file:{tmp_path / name}")
    cfg = yaml.safe_load(text)
    for r in cfg["router_settings"]["routers"]:
        if r.get("artifact"):
            r["artifact"] = str(artifact)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    drop = {*offline_check.OFFLINE_ENV, "ROUTEIQ_ROUTER_SIGNING_KEY"}  # each test says what it sets
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, str(CHECK), "--config", str(config), "--root", str(ROOT)],
        capture_output=True, text=True, timeout=120, env={**base, **env}, check=False,
    )


DEFAULT_ARTIFACT = ROOT / "router_models" / "pretrained" / "default"


def _unsigned_default(tmp_path: Path) -> Path:
    out = Path(shutil.copytree(DEFAULT_ARTIFACT, tmp_path / "default"))
    (out / "manifest.sig").unlink(missing_ok=True)  # as it ships
    return out


def test_check_passes_offline_and_fails_clearly_in_strict_mode(tmp_path: Path) -> None:
    artifact = _unsigned_default(tmp_path)
    ok = _run(_config(tmp_path, artifact), **offline_check.OFFLINE_ENV)
    assert ok.returncode == 0, ok.stderr
    assert "offline check: ok" in ok.stdout and "no outbound connection attempted" in ok.stdout

    missing = _run(_config(tmp_path, tmp_path / "nope"), **offline_check.OFFLINE_ENV)
    assert missing.returncode == 1
    assert "artifact" in missing.stderr and "bake it into the image" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    online = _run(_config(tmp_path, artifact))  # no offline env: litellm would fetch its cost map
    assert online.returncode == 1
    assert "LITELLM_LOCAL_MODEL_COST_MAP must be 'True'" in online.stderr
    assert "outbound connection attempted" in online.stderr

    warn = _run(_config(tmp_path, tmp_path / "nope"), ROUTEIQ_OFFLINE_CHECK="warn", **offline_check.OFFLINE_ENV)
    assert warn.returncode == 0 and "FAILED (warn)" in warn.stderr


def test_with_a_signing_key_an_unsigned_or_tampered_artifact_stops_the_pod(tmp_path: Path) -> None:
    """The prod overlay sets ROUTEIQ_ROUTER_SIGNING_KEY: the check refuses what the scorer would."""
    from router_models.artifacts import sign_artifact

    artifact = _unsigned_default(tmp_path)
    config = _config(tmp_path, artifact)
    key = "prod-signing-key-0123456789"
    unsigned = _run(config, ROUTEIQ_ROUTER_SIGNING_KEY=key, **offline_check.OFFLINE_ENV)
    assert unsigned.returncode == 1
    assert "manifest.sig is missing" in unsigned.stderr and "routeiq sign" in unsigned.stderr

    sign_artifact(artifact, signing_key=key)
    assert _run(config, ROUTEIQ_ROUTER_SIGNING_KEY=key, **offline_check.OFFLINE_ENV).returncode == 0
    wrong = _run(config, ROUTEIQ_ROUTER_SIGNING_KEY="another-key", **offline_check.OFFLINE_ENV)
    assert wrong.returncode == 1 and "bad signature" in wrong.stderr

    (artifact / "weights.safetensors").write_bytes(b"not the weights")
    tampered = _run(config, ROUTEIQ_ROUTER_SIGNING_KEY=key, **offline_check.OFFLINE_ENV)
    assert tampered.returncode == 1 and "sha256 does not match" in tampered.stderr
    assert len(tampered.stderr.strip().splitlines()) == 1


def test_every_gateway_config_problem_is_one_item(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: m\n    litellm_params: {}\nmystery: 1\n")
    problems, _ = offline_check._problems(bad, ROOT)
    assert problems == ["gateway config: model_list[0].litellm_params.model: Field required",
                        "gateway config: mystery: Extra inputs are not permitted"]


def test_a_registry_router_needs_no_network_at_the_check_and_a_pre_seeded_cache_is_verified(tmp_path: Path) -> None:
    """``s3://`` artifacts: the scorer reads the registry at start (not the check); a cache
    seeded with the version to serve (air-gapped) is checked like a baked-in artifact."""
    from router_models.data import file_sha256
    from router_models.registry.cache import ArtifactCache

    config = _config(tmp_path, tmp_path / "unused")
    cfg = yaml.safe_load(config.read_text())
    cache = tmp_path / "router-cache"
    for r in cfg["router_settings"]["routers"]:
        if r.get("artifact"):
            r["artifact"] = "s3://routers/prod"
    cfg["router_settings"]["registry"] = {"cache_dir": str(cache)}
    config.write_text(yaml.safe_dump(cfg))
    ok = _run(config, **offline_check.OFFLINE_ENV)
    assert ok.returncode == 0 and "no outbound connection attempted" in ok.stdout, ok.stderr

    seeded = _unsigned_default(tmp_path)
    sha = file_sha256(seeded / "manifest.json")
    shutil.copytree(seeded, cache / sha)
    for r in cfg["router_settings"]["routers"]:
        if r.get("artifact"):
            ArtifactCache(cache).remember("s3://routers/prod", r["name"], "v3", sha)
    assert _run(config, **offline_check.OFFLINE_ENV).returncode == 0
    (cache / sha / "weights.safetensors").write_bytes(b"tampered")
    tampered = _run(config, **offline_check.OFFLINE_ENV)
    assert tampered.returncode == 1 and "sha256 does not match" in tampered.stderr
