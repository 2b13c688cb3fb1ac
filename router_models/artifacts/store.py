"""Write and read router artifact directories, refusing anything not proven intact.

Layout: ``manifest.json`` (router type, format version, models and prices, embedder,
training-data sha256, eval metrics, default lambda, ``files``: sha256 of every other
file), ``weights.safetensors`` (numpy arrays, no code), optional ``manifest.sig``.

Load order matters: signature (when a key is configured) -> version -> every listed
file's sha256 -> only then parse weights. Pickle (``.pkl``) is refused unless the caller
passes ``allow_pickle=True``, and even then only after the hash and signature checks.
``sign_artifact`` signs a directory written without a key (the shipped default), after
the same version and hash checks: a signature never vouches for files that do not match.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router_models.artifacts.errors import ArtifactError
from router_models.artifacts.signing import SIGNATURE_FILE, resolve_key, sign, verify
from router_models.data import file_sha256

FORMAT = "routeiq-router"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"
PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass(frozen=True)
class LoadedArtifact:
    manifest: dict[str, Any]
    tensors: dict[str, np.ndarray]
    pickled: Any = None
    """The unpickled object of a ``.pkl`` artifact (only with ``allow_pickle=True``)."""


def save_artifact(
    out_dir: str | Path,
    manifest: dict[str, Any],
    tensors: dict[str, np.ndarray],
    *,
    signing_key: bytes | str | None = None,
) -> Path:
    """Write weights, then the manifest listing their hashes, then the signature."""
    from safetensors.numpy import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / SIGNATURE_FILE, out / MANIFEST_FILE):
        stale.unlink(missing_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / WEIGHTS_FILE))
    return write_manifest(out, manifest, [WEIGHTS_FILE], signing_key=signing_key)


def write_manifest(
    out: Path, manifest: dict[str, Any], files: list[str], *, signing_key: bytes | str | None = None
) -> Path:
    """Finalize ``manifest.json`` over ``files`` (already in ``out``) and sign it if keyed."""
    body = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION}
    body["files"] = {name: file_sha256(out / name) for name in files}
    data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
    _atomic_write(out / MANIFEST_FILE, data)
    key = resolve_key(signing_key)
    if key is not None:
        _atomic_write(out / SIGNATURE_FILE, (sign(data, key) + "\n").encode())
    return out


def load_artifact(
    path: str | Path, *, signing_key: bytes | str | None = None, allow_pickle: bool = False
) -> LoadedArtifact:
    """Verify and read an artifact directory; raise ``ArtifactError`` on any doubt."""
    root = Path(path)
    raw = _read_manifest(root)
    _check_signature(root, raw, resolve_key(signing_key))
    manifest, files = _check_contents(root, raw, allow_pickle)
    tensors: dict[str, np.ndarray] = {}
    pickled = None
    for name in files:
        if name.endswith(".safetensors"):
            tensors.update(_read_safetensors(root / name))
        elif name.endswith(PICKLE_SUFFIXES):
            pickled = _read_pickle(root / name)
    return LoadedArtifact(manifest=manifest, tensors=tensors, pickled=pickled)


def sign_artifact(path: str | Path, *, signing_key: bytes | str | None = None, allow_pickle: bool = False) -> Path:
    """Write ``manifest.sig`` for an intact artifact; raise ``ArtifactError`` if it is not intact.

    The key is ``signing_key``, else ``ROUTEIQ_ROUTER_SIGNING_KEY``: the same bytes the
    scorer will verify with. An existing signature is replaced.
    """
    root = Path(path)
    key = resolve_key(signing_key)
    if key is None:
        raise ArtifactError(f"{root}: no signing key (pass one, or set ROUTEIQ_ROUTER_SIGNING_KEY)")
    raw = _read_manifest(root)
    _check_contents(root, raw, allow_pickle)
    _atomic_write(root / SIGNATURE_FILE, (sign(raw, key) + "\n").encode())
    return root / SIGNATURE_FILE


def _read_manifest(root: Path) -> bytes:
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactError(f"{root}: no {MANIFEST_FILE}: not a router artifact")
    return manifest_path.read_bytes()


def _check_contents(root: Path, raw: bytes, allow_pickle: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parsed manifest and its ``files``, once the format and every file's sha256 check out."""
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{root / MANIFEST_FILE}: invalid JSON ({exc})") from None
    _check_format(root, manifest)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{root / MANIFEST_FILE}: 'files' must list the artifact's files and their sha256")
    for name, digest in files.items():
        _check_file(root, name, digest, allow_pickle)
    return manifest, files


def _check_signature(root: Path, raw: bytes, key: bytes | None) -> None:
    if key is None:
        return  # no key configured: signatures are neither required nor checked
    sig_path = root / SIGNATURE_FILE
    if not sig_path.is_file():
        raise ArtifactError(f"{root}: a signing key is configured but {SIGNATURE_FILE} is missing")
    if not verify(raw, sig_path.read_text(encoding="ascii", errors="replace"), key):
        raise ArtifactError(f"{root}: bad signature: {MANIFEST_FILE} was not signed with the configured key")


def _check_format(root: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{root}: not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{root}: format_version {version!r} unsupported (this build reads {FORMAT_VERSION})")


def _check_file(root: Path, name: str, digest: object, allow_pickle: bool) -> None:
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        raise ArtifactError(f"{root}: illegal file name in manifest: {name!r}")
    if name.endswith(PICKLE_SUFFIXES) and not allow_pickle:
        raise ArtifactError(f"{root}/{name}: pickle artifacts can run code; refused (opt in with allow_pickle=True)")
    if not name.endswith((".safetensors", *PICKLE_SUFFIXES)):
        raise ArtifactError(f"{root}/{name}: unsupported file type")
    target = root / name
    if not target.is_file():
        raise ArtifactError(f"{target}: listed in the manifest but missing")
    if file_sha256(target) != digest:
        raise ArtifactError(f"{target}: sha256 does not match the manifest (tampered or corrupt)")


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # noqa: BLE001 - any parse failure is one refusal
        raise ArtifactError(f"{path}: unreadable safetensors ({exc})") from None


def _read_pickle(path: Path) -> Any:
    import pickle

    with open(path, "rb") as fh:
        return pickle.load(fh)  # caller opted in; hash and signature already checked


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are read by other users (replicas)
    os.replace(tmp, path)
