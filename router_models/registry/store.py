"""``RouterRegistry``: published router versions on S3 and the pointer each router serves.

Layout under ``s3://bucket/prefix``::

    versions/v7/<sha256>/manifest.json   the artifact's own files (manifest, weights, sig),
    versions/v7/<sha256>/weights.safetensors  under the sha256 of its manifest
    versions/v7/version.json             written last: sha256 and size per file, HMAC
    pointers/auto.json                   {"current": "v7", "previous": "v6"}

Atomicity for readers is by order, not by transaction: ``publish`` uploads every file,
then ``version.json`` (the version exists only from that object on: a version directory
without it, a crashed or running upload, is invisible), then verifies the upload; only
``promote``/``rollback`` write a pointer, and a pointer names complete versions only. Versions are
immutable: ``version.json`` is written with ``If-None-Match: *`` so two publishers never
finish the same number (the loser takes the next one), and numbers count half-published
directories too, so a retry never reuses one. ``promote`` and ``rollback`` write the
pointer only if it is still the one they read (``If-Match`` its ETag): of two operators
moving it at once, the second is refused instead of silently undoing the first.

A version is served only once proven: ``version.json``'s HMAC (when a signing key is
configured, the same key and code as ``router_models.artifacts.signing``), then every
downloaded file's sha256 against it; ``load_artifact`` then checks the artifact's own
manifest signature and hashes again when the replica loads it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router_models.artifacts import MANIFEST_FILE, ArtifactError, load_artifact, sign_artifact
from router_models.artifacts.signing import SIGNATURE_FILE, resolve_key, sign, verify
from router_models.data import file_sha256
from router_models.registry.errors import RegistryError, VersionRefusedError
from router_models.registry.location import RegistryLocation
from router_models.registry.s3 import is_missing, s3_errors

VERSION_FILE = "version.json"
VERSION_FORMAT = "routeiq-router-version"
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_ROUTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_CHUNK = 1 << 20
_PUBLISH_ATTEMPTS = 3


@dataclass(frozen=True)
class VersionInfo:
    """One published version, as its ``version.json`` describes it."""

    version: str
    created_at: str
    sha256: str
    """sha256 of the artifact's ``manifest.json`` (which hashes every other file): its identity."""
    files: dict[str, dict[str, Any]]
    """File name → ``{"sha256", "size"}``."""
    signature: str | None = None
    artifact_signed: bool = False
    training_data_sha256: str | None = None
    eval: dict[str, float] = field(default_factory=dict)
    router_type: str = ""
    default_lambda: float | None = None

    @property
    def number(self) -> int:
        return version_number(self.version)

    def body(self) -> dict[str, Any]:
        """``version.json`` without its signature: the bytes the HMAC covers."""
        return {"format": VERSION_FORMAT, "version": self.version, "created_at": self.created_at,
                "sha256": self.sha256, "files": self.files, "artifact_signed": self.artifact_signed,
                "training_data_sha256": self.training_data_sha256, "eval": self.eval,
                "router_type": self.router_type, "default_lambda": self.default_lambda}

    def signature_state(self, key: bytes | None) -> str:
        """``verified``, ``bad``, ``present`` (no key to check it), or ``unsigned``."""
        if not self.signature:
            return "unsigned"
        if key is None:
            return "present"
        return "verified" if verify(_canonical(self.body()), self.signature, key) else "bad"


@dataclass(frozen=True)
class Pointer:
    """The version a router serves, and the one before it (what ``rollback`` returns to)."""

    router: str
    current: str
    previous: str | None = None
    updated_at: str = ""
    etag: str | None = None
    """The pointer object's ETag when read: a move writes only if it is still this one."""


def version_number(version: str) -> int:
    match = _VERSION.match(version)
    if not match:
        raise RegistryError(f"{version!r} is not a version (v1, v2, ...)")
    return int(match.group(1))


class RouterRegistry:
    """Publish, list, promote, roll back and download router versions in one S3 location."""

    def __init__(self, client: Any, location: RegistryLocation, *, signing_key: bytes | str | None = None) -> None:
        self._s3, self.location = client, location
        self.signing_key = resolve_key(signing_key)

    # publishing ---------------------------------------------------------------------------
    def publish(self, router_dir: str | Path, *, allow_pickle: bool = False) -> VersionInfo:
        """Upload an artifact directory as the next version, verify it, and return it.

        The directory is checked (hashes; the signature when a key is configured, signing
        it first if it has none) before anything is uploaded. No pointer moves.
        """
        with tempfile.TemporaryDirectory(prefix="routeiq-publish-") as tmp:
            staged = Path(tmp) / "artifact"
            try:
                shutil.copytree(router_dir, staged)
            except OSError as err:
                raise RegistryError(f"{router_dir}: cannot read ({err.strerror or err})") from None
            manifest = _checked_manifest(staged, self.signing_key, allow_pickle)
            names = [MANIFEST_FILE, *manifest["files"], *([SIGNATURE_FILE] if (staged / SIGNATURE_FILE).is_file()
                                                           else [])]
            for _ in range(_PUBLISH_ATTEMPTS):
                info = self._describe(staged, manifest, names, self._next_version())
                for name in names:
                    self._upload(staged / name, self._artifact_key(info, name))
                if self._write_version(info):
                    break
            else:
                raise RegistryError(f"{self.location}: lost the race for a version number "
                                    f"{_PUBLISH_ATTEMPTS} times; publish again")
        self.verify(info)
        return info

    def verify(self, info: VersionInfo) -> None:
        """Download ``info``'s files and check them (what ``publish`` does after uploading)."""
        with tempfile.TemporaryDirectory(prefix="routeiq-verify-") as tmp:
            self.fetch(self.version(info.version), Path(tmp))

    def _describe(self, staged: Path, manifest: dict[str, Any], names: list[str], version: str) -> VersionInfo:
        files = {n: {"sha256": file_sha256(staged / n), "size": (staged / n).stat().st_size} for n in names}
        info = VersionInfo(
            version=version, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            sha256=files[MANIFEST_FILE]["sha256"], files=files, artifact_signed=SIGNATURE_FILE in files,
            training_data_sha256=(manifest.get("training_data") or {}).get("sha256"),
            eval=eval_summary(manifest), router_type=str(manifest.get("router_type", "")),
            default_lambda=manifest.get("default_lambda"))
        if self.signing_key is None:
            return info
        return replace(info, signature=sign(_canonical(info.body()), self.signing_key))

    def _next_version(self) -> str:
        """One past every number used, half-published directories included."""
        prefix = self.location.key("versions") + "/"
        numbers = [0]
        with s3_errors(f"list {self.location}"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.location.bucket, Prefix=prefix, Delimiter="/"):
                for p in page.get("CommonPrefixes", []):
                    name = p["Prefix"][len(prefix):].strip("/")
                    if _VERSION.match(name):
                        numbers.append(version_number(name))
        return f"v{max(numbers) + 1}"

    def _upload(self, path: Path, key: str) -> None:
        with s3_errors(f"upload {key}"), open(path, "rb") as fh:
            self._s3.put_object(Bucket=self.location.bucket, Key=key, Body=fh)

    def _write_version(self, info: VersionInfo) -> bool:
        """Finish the version; ``False`` if another publisher finished this number first."""
        from botocore.exceptions import ClientError

        body = {**info.body(), "signature": info.signature}
        key = self.location.key("versions", info.version, VERSION_FILE)
        with s3_errors(f"write {key}"):
            try:
                self._s3.put_object(Bucket=self.location.bucket, Key=key, Body=_canonical(body),
                                    ContentType="application/json", IfNoneMatch="*")
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
        return True

    # reading ------------------------------------------------------------------------------
    def versions(self) -> list[VersionInfo]:
        """Every complete version (one with its ``version.json``), oldest first."""
        prefix = self.location.key("versions") + "/"
        found = []
        with s3_errors(f"list {self.location}"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.location.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    parts = obj["Key"][len(prefix):].split("/")
                    if len(parts) == 2 and parts[1] == VERSION_FILE and _VERSION.match(parts[0]):
                        found.append(parts[0])
        return [self.version(v, check_signature=False) for v in sorted(found, key=version_number)]

    def version(self, version: str, *, check_signature: bool = True) -> VersionInfo:
        """``version``'s description; a half-published version does not exist. With a signing
        key configured (and ``check_signature``), an unsigned or badly signed one is refused."""
        version_number(version)
        found = self._get(self.location.key("versions", version, VERSION_FILE))
        if found is None:
            raise RegistryError(f"{self.location}: no version {version} (never published, or not finished)")
        info = _parse_version(found[0], version)
        if check_signature and self.signing_key is not None:
            state = info.signature_state(self.signing_key)
            if state != "verified":
                why = "is not signed" if state == "unsigned" else "has a bad signature"
                raise VersionRefusedError(f"{self.location}/{version} {why}; a signing key is configured")
        return info

    def pointer(self, router: str) -> Pointer | None:
        """The router's pointer, or ``None`` if it was never promoted."""
        found = self._get(self._pointer_key(router))
        if found is None:
            return None
        raw, etag = found
        try:
            data = json.loads(raw)
            return Pointer(router, str(data["current"]), data.get("previous"), str(data.get("updated_at", "")), etag)
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"{self.location}: pointer of router {router!r} is not valid JSON") from None

    def routers(self) -> list[str]:
        """Every router that has a pointer."""
        prefix = self.location.key("pointers") + "/"
        with s3_errors(f"list {self.location}"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
            names = [o["Key"][len(prefix):] for page in pages for o in page.get("Contents", [])]
        return sorted(n.removesuffix(".json") for n in names if n.endswith(".json") and "/" not in n)

    def current(self, router: str) -> VersionInfo:
        """The version the router's pointer names (signature checked)."""
        pointer = self.pointer(router)
        if pointer is None:
            raise RegistryError(f"{self.location}: router {router!r} has no promoted version")
        return self.version(pointer.current)

    def fetch(self, info: VersionInfo, dest: Path) -> None:
        """Download ``info``'s files into ``dest``; ``RegistryError`` on any sha256 mismatch."""
        dest.mkdir(parents=True, exist_ok=True)
        for name, meta in info.files.items():
            if "/" in name or name.startswith("."):
                raise RegistryError(f"{self.location}/{info.version}: illegal file name {name!r}")
            key = self._artifact_key(info, name)
            if self._download(key, dest / name) != meta.get("sha256"):
                raise VersionRefusedError(f"{key}: sha256 does not match version.json (tampered or corrupt)")

    def _download(self, key: str, path: Path) -> str:
        """Stream ``key`` into ``path``; its sha256."""
        digest = hashlib.sha256()
        with s3_errors(f"download {key}"), open(path, "wb") as fh:
            body = self._s3.get_object(Bucket=self.location.bucket, Key=key)["Body"]
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
                fh.write(chunk)
        return digest.hexdigest()

    # moving pointers ----------------------------------------------------------------------
    def promote(self, router: str, version: str) -> Pointer:
        """Point ``router`` at ``version`` (which must be complete and, when keyed, signed)."""
        self.version(version)
        old = self.pointer(router)
        if old is not None and old.current == version:
            return old
        return self._write_pointer(router, version, old.current if old else None, old)

    def rollback(self, router: str) -> Pointer:
        """Point ``router`` back at its previous version (the two swap: a second rollback undoes it)."""
        old = self.pointer(router)
        if old is None or not old.previous:
            raise RegistryError(f"{self.location}: router {router!r} has no previous version to roll back to")
        self.version(old.previous)
        return self._write_pointer(router, old.previous, old.current, old)

    def _write_pointer(self, router: str, current: str, previous: str | None, read: Pointer | None) -> Pointer:
        """Write the pointer only if it is still the one ``read`` (``None``: still absent), so
        two operators moving it at once cannot lose a move: the second is refused."""
        from botocore.exceptions import ClientError

        pointer = Pointer(router, current, previous, datetime.now(UTC).isoformat(timespec="seconds"))
        body = {"router": router, "current": current, "previous": previous, "updated_at": pointer.updated_at}
        key = self._pointer_key(router)
        condition = {"IfMatch": read.etag} if read is not None and read.etag else {"IfNoneMatch": "*"}
        with s3_errors(f"write {key}"):
            try:
                self._s3.put_object(Bucket=self.location.bucket, Key=key, Body=_canonical(body),
                                    ContentType="application/json", **condition)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise RegistryError(f"{self.location}: the pointer of router {router!r} moved meanwhile "
                                        "(another promote or rollback); look at it and run again") from None
                raise
        return pointer

    # helpers ------------------------------------------------------------------------------
    def _get(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or ``None`` if it does not exist."""
        from botocore.exceptions import ClientError

        with s3_errors(f"read {key}"):
            try:
                obj = self._s3.get_object(Bucket=self.location.bucket, Key=key)
                data: bytes = obj["Body"].read()
            except ClientError as err:
                if is_missing(err):
                    return None
                raise
        return data, str(obj.get("ETag", ""))

    def _artifact_key(self, info: VersionInfo, name: str) -> str:
        """Files sit under the artifact's sha256 too: two publishers racing for one number
        never overwrite each other's files (the loser's stay unreferenced)."""
        return self.location.key("versions", info.version, info.sha256, name)

    def _pointer_key(self, router: str) -> str:
        if not _ROUTER.match(router):
            raise RegistryError(f"{router!r} is not a router name")
        return self.location.key("pointers", f"{router}.json")


def open_registry(url: str, endpoint_url: str | None = None, region: str | None = None) -> RouterRegistry:
    """The registry at ``s3://bucket/prefix``, with a client for ``endpoint_url``/``region`` (the CLIs' options)."""
    from router_models.registry.location import parse_registry_url
    from router_models.registry.s3 import build_s3_client

    return RouterRegistry(build_s3_client(endpoint_url, region), parse_registry_url(url))


def eval_summary(manifest: dict[str, Any]) -> dict[str, float]:
    """The artifact's headline held-out numbers, when its manifest has an ``eval``."""
    holdout = (manifest.get("eval") or {}).get("holdout") or {}
    keys = ("quality_at_default", "cost_at_default", "q_at_c_best_ratio", "c_at_q_best_pct")
    return {k: round(float(holdout[k]), 4) for k in keys if isinstance(holdout.get(k), int | float)}


def _checked_manifest(staged: Path, key: bytes | None, allow_pickle: bool) -> dict[str, Any]:
    """The artifact's manifest once it proved intact (signed first when a key is given)."""
    try:
        if key is not None and not (staged / SIGNATURE_FILE).is_file():
            sign_artifact(staged, signing_key=key, allow_pickle=allow_pickle)
        return load_artifact(staged, signing_key=key, allow_pickle=allow_pickle).manifest
    except ArtifactError as err:
        raise RegistryError(f"not published: {err}") from None


def _parse_version(raw: bytes, version: str) -> VersionInfo:
    try:
        data = json.loads(raw)
        if data.get("format") != VERSION_FORMAT or data.get("version") != version:
            raise ValueError("not this version's manifest")
        return VersionInfo(
            version=version, created_at=str(data["created_at"]), sha256=str(data["sha256"]),
            files=dict(data["files"]), signature=data.get("signature"),
            artifact_signed=bool(data.get("artifact_signed")),
            training_data_sha256=data.get("training_data_sha256"), eval=dict(data.get("eval") or {}),
            router_type=str(data.get("router_type", "")), default_lambda=data.get("default_lambda"))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise RegistryError(f"{version}/{VERSION_FILE} is not a valid version manifest ({err})") from None


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
