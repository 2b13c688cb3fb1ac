"""Complete validation of a config version, before anything changes: also ``routeiq config validate``.

``app.config.parse_config`` checks the schema, the secret references (every
``os.environ/`` set, every ``file:`` readable) and the cross-references (fallbacks,
aliases, router candidates, declared provider groups). A version about to go live must
also pass what only the replicas would otherwise find out later: the master key
resolves, each router's artifact verifies (a directory's manifest and hashes, a
registry's promoted version, signature checked where a key is configured), and a
learned router knows every candidate it is offered (by name or ``router_profile``),
else it would never pick them. Every problem is collected, one line each.

Blocking (artifact downloads): the watcher calls it in a thread.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from app.config import ConfigError, GatewayConfig, RegistrySettings, RouterConfig, parse_config_text
from app.gateway.catalog import ModelCatalog


def validate_text(text: str, origin: str, root: Path | None = None, *, check_artifacts: bool = True) -> GatewayConfig:
    """The config in ``text``, fully checked; ``ConfigError`` listing every problem otherwise.

    ``root`` resolves relative artifact paths (as ``deployments.graph`` does); default: cwd.
    ``check_artifacts=False`` for a version another replica already verified (the record's).
    """
    cfg = parse_config_text(text, origin)
    problems: list[str] = []
    try:
        cfg.master_key()
    except ConfigError as err:
        problems += err.problems
    if check_artifacts:
        problems += artifact_problems(cfg, root or Path.cwd())
    if problems:
        raise ConfigError(*problems)
    return cfg


def artifact_problems(cfg: GatewayConfig, root: Path) -> list[str]:
    """Each router artifact that does not verify, and each candidate a learned router cannot score."""
    problems = []
    candidates = {name: t.candidates for name, t in ModelCatalog(cfg).routers.items()}
    for i, router in enumerate(cfg.router_settings.routers):
        if not router.artifact:
            continue
        where = f"router_settings.routers[{i}].artifact"
        try:
            models = _artifact_models(router, cfg.router_settings.registry, root)
        except ConfigError as err:
            problems += [f"{where}: {p}" for p in err.problems]
            continue
        if router.strategy != "learned":
            continue
        from router_models.inference.coverage import coverage

        found = coverage(((c.name, c.profile) for c in candidates[router.name]), set(models))
        problems += [f"router_settings.routers[{i}]: candidate {name!r} is unknown to the router's artifact "
                     "(train it on the model, or give it a model_info.router_profile the artifact knows)"
                     for name in found.unknown]
    return problems


def _artifact_models(router: RouterConfig, registry: RegistrySettings, root: Path) -> list[str]:
    """The models the router's artifact knows, after verifying it (downloaded for a registry)."""
    from router_models.artifacts import SIGNING_KEY_ENV, ArtifactError, load_artifact
    from router_models.registry import RegistryError, is_registry_url

    assert router.artifact is not None
    key = os.environ.get(SIGNING_KEY_ENV)
    signing_key = key.encode() if key else None
    try:
        if is_registry_url(router.artifact):
            with tempfile.TemporaryDirectory(prefix="routeiq-validate-") as tmp:
                _fetch_current(router, registry, signing_key, Path(tmp))
                manifest = load_artifact(Path(tmp), signing_key=signing_key).manifest
        else:
            path = Path(router.artifact.removeprefix("file://"))
            manifest = load_artifact(path if path.is_absolute() else root / path, signing_key=signing_key).manifest
    except (ArtifactError, RegistryError) as err:
        raise ConfigError(str(err)) from None
    return [str(m) for m in manifest.get("models", [])]


def _fetch_current(router: RouterConfig, registry: RegistrySettings, signing_key: bytes | None, dest: Path) -> None:
    """Download the version the router's registry pointer names into ``dest``."""
    from router_models.registry import parse_registry_url
    from router_models.registry.s3 import build_s3_client
    from router_models.registry.store import RouterRegistry

    assert router.artifact is not None
    client = build_s3_client(registry.endpoint_url, registry.region, timeout_s=registry.timeout_s)
    store = RouterRegistry(client, parse_registry_url(router.artifact), signing_key=signing_key)
    store.fetch(store.current(router.name), dest)
