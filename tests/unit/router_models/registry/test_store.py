"""``RouterRegistry`` against a real S3-compatible server: publish, list, promote, roll back,
and what a reader must refuse or never see."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.s3_server import S3Server
from router_models.registry import RegistryError, parse_registry_url
from router_models.registry.errors import VersionRefusedError
from router_models.registry.store import Pointer, RouterRegistry
from tests.registry_support import KEY, make_artifact


def test_publish_lists_versions_in_order_with_their_hashes_and_eval(registry: RouterRegistry, tmp_path: Path) -> None:
    v1 = registry.publish(make_artifact(tmp_path / "a", 0.1))
    v2 = registry.publish(make_artifact(tmp_path / "b", 0.3))
    assert (v1.version, v2.version) == ("v1", "v2")
    listed = registry.versions()
    assert [v.version for v in listed] == ["v1", "v2"]
    assert listed[1].sha256 == v2.sha256 != v1.sha256
    assert listed[1].eval == {"quality_at_default": 0.5, "cost_at_default": 0.25}
    assert listed[1].training_data_sha256 == "ab" * 32
    assert listed[1].default_lambda == 0.3
    assert set(listed[1].files) == {"manifest.json", "weights.safetensors"}


def test_promote_and_rollback_move_the_pointer(registry: RouterRegistry, tmp_path: Path) -> None:
    assert registry.pointer("auto") is None
    v1 = registry.publish(make_artifact(tmp_path / "a", 0.1)).version
    v2 = registry.publish(make_artifact(tmp_path / "b", 0.3)).version
    assert registry.pointer("auto") is None  # publishing moves no pointer
    registry.promote("auto", v1)
    p = registry.promote("auto", v2)
    assert (p.current, p.previous) == (v2, v1)
    assert registry.current("auto").version == v2
    p = registry.rollback("auto")
    assert (p.current, p.previous) == (v1, v2)
    assert registry.routers() == ["auto"]


def test_rollback_without_a_previous_version_is_refused(registry: RouterRegistry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback("auto")
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "a")).version)
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback("auto")


def test_promoting_an_unknown_version_is_refused(registry: RouterRegistry) -> None:
    with pytest.raises(RegistryError, match="no version v9"):
        registry.promote("auto", "v9")
    with pytest.raises(RegistryError, match="not a version"):
        registry.promote("auto", "latest")


def test_a_half_published_version_is_invisible_and_its_number_never_reused(
        s3_server: S3Server, registry: RouterRegistry, tmp_path: Path) -> None:
    registry.publish(make_artifact(tmp_path / "a"))
    # A publisher that died after uploading its files, before version.json:
    art = make_artifact(tmp_path / "b", 0.4)
    for f in art.iterdir():
        key = registry.location.key("versions", "v2", "0" * 64, f.name)
        s3_server.client().put_object(Bucket=registry.location.bucket, Key=key, Body=f.read_bytes())
    assert [v.version for v in registry.versions()] == ["v1"]
    with pytest.raises(RegistryError, match="not finished"):
        registry.promote("auto", "v2")
    assert registry.publish(make_artifact(tmp_path / "c", 0.5)).version == "v3"


def test_a_tampered_object_is_refused_at_download(s3_server: S3Server, registry: RouterRegistry,
                                                  tmp_path: Path) -> None:
    info = registry.publish(make_artifact(tmp_path / "a"))
    key = registry.location.key("versions", info.version, info.sha256, "weights.safetensors")
    s3_server.client().put_object(Bucket=registry.location.bucket, Key=key, Body=b"not the weights")
    with pytest.raises(VersionRefusedError, match="sha256 does not match"):
        registry.fetch(info, tmp_path / "download")


def test_a_signed_registry_signs_and_verifies_versions(signed_registry: RouterRegistry, tmp_path: Path) -> None:
    info = signed_registry.publish(make_artifact(tmp_path / "a"))  # unsigned artifact: signed on publish
    assert info.artifact_signed and info.signature
    assert signed_registry.version(info.version).signature_state(KEY) == "verified"
    assert signed_registry.version(info.version).signature_state(b"another key") == "bad"


def test_an_unsigned_version_is_refused_when_a_signing_key_is_required(
        s3_server: S3Server, registry: RouterRegistry, registry_url: str, tmp_path: Path) -> None:
    info = registry.publish(make_artifact(tmp_path / "a"))  # published without a key
    registry.promote("auto", info.version)
    keyed = RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=KEY)
    with pytest.raises(VersionRefusedError, match="is not signed"):
        keyed.current("auto")
    with pytest.raises(VersionRefusedError, match="is not signed"):
        keyed.promote("auto", info.version)


def test_an_artifact_signed_with_another_key_is_not_published(signed_registry: RouterRegistry, tmp_path: Path) -> None:
    art = make_artifact(tmp_path / "a", signing_key=b"someone else")
    with pytest.raises(RegistryError, match=r"not published: .*bad signature"):
        signed_registry.publish(art)
    assert signed_registry.versions() == []


def test_a_tampered_local_artifact_is_not_published(registry: RouterRegistry, tmp_path: Path) -> None:
    art = make_artifact(tmp_path / "a")
    (art / "weights.safetensors").write_bytes(b"changed")
    with pytest.raises(RegistryError, match=r"not published: .*sha256"):
        registry.publish(art)


def test_an_unreachable_store_is_one_registry_error(tmp_path: Path) -> None:
    down = S3Server()  # never started: nothing listens on its port
    registry = RouterRegistry(down.client(), parse_registry_url("s3://bucket/p"))
    with pytest.raises(RegistryError, match="connect"):
        registry.versions()


class StaleNumbers(RouterRegistry):
    """A publisher that read the version list before another one finished ``v1``."""

    def _next_version(self) -> str:
        self.calls = getattr(self, "calls", 0) + 1
        return "v1" if self.calls == 1 else super()._next_version()


def test_a_publisher_that_loses_the_race_for_a_number_takes_the_next(
        s3_server: S3Server, registry: RouterRegistry, registry_url: str, tmp_path: Path) -> None:
    first = registry.publish(make_artifact(tmp_path / "a", 0.1))
    late = StaleNumbers(s3_server.client(), parse_registry_url(registry_url))
    second = late.publish(make_artifact(tmp_path / "b", 0.2))
    assert (first.version, second.version) == ("v1", "v2")
    assert registry.version("v1").sha256 == first.sha256  # v1 was not overwritten
    registry.verify(registry.version("v1"))


class Interleaved(RouterRegistry):
    """An operator whose pointer read is followed by someone else's promote before it writes."""

    other: RouterRegistry
    version_in_between = ""

    def pointer(self, router: str) -> Pointer | None:
        read = super().pointer(router)
        self.other.promote(router, self.version_in_between)
        return read


def test_two_pointer_moves_at_once_never_lose_one(s3_server: S3Server, registry: RouterRegistry,
                                                   registry_url: str, tmp_path: Path) -> None:
    v1, v2, v3 = (registry.publish(make_artifact(tmp_path / n, lam)).version
                  for n, lam in (("a", 0.1), ("b", 0.2), ("c", 0.3)))
    registry.promote("auto", v1)
    slow = Interleaved(s3_server.client(), parse_registry_url(registry_url))
    slow.other, slow.version_in_between = registry, v2
    with pytest.raises(RegistryError, match="moved meanwhile"):
        slow.promote("auto", v3)
    pointer = registry.pointer("auto")
    assert pointer is not None and (pointer.current, pointer.previous) == (v2, v1)  # the other move stands
    with pytest.raises(RegistryError, match="moved meanwhile"):
        slow.promote("fresh", v3)  # both saw no pointer yet: the second first-promote is refused too
    fresh = registry.pointer("fresh")
    assert fresh is not None and fresh.current == v2
    assert slow.promote("auto", v3).current == v3  # once nobody moves it meanwhile: done
