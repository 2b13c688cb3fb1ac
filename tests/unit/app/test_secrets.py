"""Secrets from mounted files: parsing, the re-read cache, and rotation through the app.

The rotation tests drive the real FastAPI app in-process (``httpx.ASGITransport``)
around a ``Gateway`` with a ``LocalProviderPool`` against the fake upstream: a key
rotated on disk is used by the next request, with no restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import secrets
from app.config import ConfigError, parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.secrets import SecretError, SecretFile, parse_secret
from app.wiring import build_gateway
from devtools.configs import CHEAP, gateway_config


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(secrets, "RECHECK_S", 0.0)  # every get() re-checks the file
    monkeypatch.delenv("ROUTEIQ_MASTER_KEY", raising=False)
    monkeypatch.delenv("ROUTEIQ_MASTER_KEY_FILE", raising=False)
    secrets.clear_cache()
    yield
    secrets.clear_cache()


def write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a new inode), as a Secret volume update does."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class KubeSecretVolume:
    """The layout the kubelet writes: ``key -> ..data/key``, ``..data -> ..<timestamp>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0

    def publish(self, **keys: str) -> None:
        self.version += 1
        version_dir = self.root / f"..2026_11_26_{self.version:04d}"
        version_dir.mkdir()
        for key, value in keys.items():
            (version_dir / key).write_text(value)
            link = self.root / key
            if not link.is_symlink():
                link.symlink_to(Path("..data") / key)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version_dir.name)
        os.replace(tmp, self.root / "..data")  # the atomic swap


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"sk-abc", "sk-abc"), (b"sk-abc\n", "sk-abc"), (b"sk-abc\r\n", "sk-abc")],
)
def test_parse_secret_accepts_one_token_with_one_trailing_newline(raw: bytes, expected: str) -> None:
    assert parse_secret(raw) == expected


@pytest.mark.parametrize("raw", [b"", b"\n", b"sk abc", b"sk-abc\n\n", b"sk-a\nsk-b", b"\tsk", b"\xff\xfe"])
def test_parse_secret_rejects_empty_or_malformed(raw: bytes) -> None:
    with pytest.raises(SecretError):
        parse_secret(raw)


def test_missing_file_fails_at_first_read_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"^secret file .*nope: No such file or directory$"):
        SecretFile(str(tmp_path / "nope")).get()


def test_rotation_is_picked_up_and_bad_versions_keep_the_old_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "key"
    write(path, "sk-one\n")
    secret = SecretFile(str(path))
    assert secret.get() == "sk-one"
    write(path, "sk-two\n")
    assert secret.get() == "sk-two"
    caplog.set_level(logging.WARNING, logger="routeiq.secrets")
    for bad in ("", "sk three\n", "sk-a\nsk-b\n"):
        write(path, bad)
        assert [secret.get() for _ in range(3)] == ["sk-two"] * 3
    path.unlink()
    assert secret.get() == "sk-two"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]  # (the rotation itself is INFO)
    assert len(warnings) == 4, "one warning per bad version, not per read"
    write(path, "sk-four")
    assert secret.get() == "sk-four"


def test_within_the_recheck_interval_the_file_is_not_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    write(path, "sk-one")
    secret = SecretFile(str(path))
    assert secret.get() == "sk-one"
    monkeypatch.setattr(secrets, "RECHECK_S", 3600.0)
    write(path, "sk-two")
    assert secret.get() == "sk-one"  # cached: no stat on the hot path
    monkeypatch.setattr(secrets, "RECHECK_S", 0.0)
    assert secret.get() == "sk-two"


def test_kubernetes_symlink_swap_is_seen_as_a_rotation(tmp_path: Path) -> None:
    volume = KubeSecretVolume(tmp_path)
    volume.publish(**{"master-key": "sk-one\n"})
    secret = SecretFile(str(tmp_path / "master-key"))
    assert secret.get() == "sk-one"
    volume.publish(**{"master-key": "sk-two\n"})
    assert secret.get() == "sk-two"


def test_config_load_fails_with_one_line_when_a_secret_file_is_missing(tmp_path: Path) -> None:
    raw = gateway_config("http://127.0.0.1:9/v1")
    raw["model_list"][0]["litellm_params"]["api_key"] = f"file:{tmp_path}/missing"
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    expected = f"secret file {tmp_path}/missing: No such file or directory"
    assert str(err.value) == f"model_list[0].litellm_params.api_key: {expected}"
    assert "\n" not in str(err.value)


def test_master_key_from_env_file_and_from_config_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "master-key"
    write(key, "sk-from-file\n")
    raw = gateway_config("http://127.0.0.1:9/v1")
    raw["general_settings"]["master_key"] = f"file:{key}"
    cfg = parse_config(raw)
    assert cfg.master_key() == "sk-from-file"
    other = tmp_path / "other"
    write(other, "sk-other")
    monkeypatch.setenv("ROUTEIQ_MASTER_KEY_FILE", str(other))
    assert cfg.master_key() == "sk-other"
    monkeypatch.setenv("ROUTEIQ_MASTER_KEY_FILE", str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match="gone: No such file"):
        cfg.master_key()


@pytest.fixture
async def rotating_gateway(tmp_path: Path, upstream: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Path, Path]]:
    volume = KubeSecretVolume(tmp_path)
    volume.publish(**{"master-key": "sk-master-one\n", "provider-key": "sk-upstream-one\n"})
    raw = gateway_config(upstream.url, access={"enabled": False}, decisions={"enabled": False})
    raw["general_settings"]["master_key"] = f"file:{tmp_path}/master-key"
    for entry in raw["model_list"]:
        entry["litellm_params"]["api_key"] = f"file:{tmp_path}/provider-key"
    cfg = parse_config(raw)
    assert cfg.master_key() == "sk-master-one"  # as build_graph does: fail at start, not per request
    pool = LocalProviderPool(cfg)
    app = create_app(build_gateway(cfg, pool, None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        client.volume = volume  # type: ignore[attr-defined]
        yield client, tmp_path / "master-key", tmp_path / "provider-key"
    await pool.close()


async def _models(client: httpx.AsyncClient, key: str) -> int:
    return (await client.get("/v1/models", headers={"authorization": f"Bearer {key}"})).status_code


async def test_rotated_master_key_authenticates_the_next_request_without_restart(
    rotating_gateway: tuple[httpx.AsyncClient, Path, Path],
) -> None:
    client, _, _ = rotating_gateway
    volume: KubeSecretVolume = client.volume  # type: ignore[attr-defined]
    assert await _models(client, "sk-master-one") == 200
    volume.publish(**{"master-key": "sk-master-two\n", "provider-key": "sk-upstream-one\n"})
    assert await _models(client, "sk-master-two") == 200
    assert await _models(client, "sk-master-one") == 401


async def test_empty_or_malformed_master_key_file_keeps_the_old_key(
    rotating_gateway: tuple[httpx.AsyncClient, Path, Path],
) -> None:
    client, _, _ = rotating_gateway
    volume: KubeSecretVolume = client.volume  # type: ignore[attr-defined]
    for bad in ("", "\n", "sk-master two\n", "sk-a\nsk-b\n"):
        volume.publish(**{"master-key": bad, "provider-key": "sk-upstream-one\n"})
        assert await _models(client, "sk-master-one") == 200, repr(bad)
        assert await _models(client, bad.strip() or "x") == 401


async def test_rotated_provider_key_is_sent_upstream_on_the_next_call(
    rotating_gateway: tuple[httpx.AsyncClient, Path, Path], upstream: Any
) -> None:
    client, _, _ = rotating_gateway
    volume: KubeSecretVolume = client.volume  # type: ignore[attr-defined]
    body = {"model": CHEAP, "messages": [{"role": "user", "content": "hi"}]}
    auth = {"authorization": "Bearer sk-master-one"}

    async def upstream_key() -> str:
        resp = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert resp.status_code == 200, resp.text
        return upstream.state.requests[-1]["headers"]["authorization"]

    assert await upstream_key() == "Bearer sk-upstream-one"
    volume.publish(**{"master-key": "sk-master-one\n", "provider-key": "sk-upstream-two\n"})
    assert await upstream_key() == "Bearer sk-upstream-two"
    volume.publish(**{"master-key": "sk-master-one\n", "provider-key": "   \n"})
    assert await upstream_key() == "Bearer sk-upstream-two"
