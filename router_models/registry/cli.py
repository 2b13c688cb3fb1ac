"""Registry commands: ``publish``, ``versions``, ``promote``, ``rollback``.

Mounted on the ``routeiq`` root by ``app.cli``. The S3 endpoint, region and credentials
come from the standard AWS settings (``AWS_ENDPOINT_URL``, ``AWS_REGION``, profiles,
roles), or ``--endpoint-url``/``--region``; the signing key from
``ROUTEIQ_ROUTER_SIGNING_KEY``. Every failure is one line on stderr and exit status 1,
never a traceback. boto3 is imported only when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from router_models.registry.errors import RegistryError

if TYPE_CHECKING:
    from router_models.registry.store import RouterRegistry

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False)

Endpoint = Annotated[str | None, typer.Option(help="S3-compatible endpoint URL (else AWS_ENDPOINT_URL / AWS S3).")]
Region = Annotated[str | None, typer.Option(help="Region (else AWS_REGION / the AWS config).")]
RegistryUrl = Annotated[str, typer.Option("--registry", help="The registry: s3://bucket/prefix.")]
Router = Annotated[str, typer.Option(help="Router name (routers[].name in the gateway config).")]


@contextmanager
def _one_line_errors() -> Iterator[None]:
    from router_models.artifacts import ArtifactError

    try:
        yield
    except (RegistryError, ArtifactError, ValueError) as err:
        typer.echo(f"error: {' '.join(str(err).split())}", err=True)
        raise typer.Exit(1) from None


def _registry(url: str, endpoint_url: str | None, region: str | None) -> RouterRegistry:
    from router_models.registry.store import open_registry

    return open_registry(url, endpoint_url, region)


def _run(url: str, endpoint_url: str | None, region: str | None, action: Callable[[RouterRegistry], None]) -> None:
    with _one_line_errors():
        action(_registry(url, endpoint_url, region))


@app.command()
def publish(
    router_dir: Annotated[Path, typer.Option(help="Artifact directory (routeiq train --out).")],
    to: Annotated[str, typer.Option("--to", help="The registry: s3://bucket/prefix.")],
    endpoint_url: Endpoint = None, region: Region = None,
) -> None:
    """Upload an artifact as the next version, verify it, print the version (no pointer moves)."""
    def act(registry: RouterRegistry) -> None:
        info = registry.publish(router_dir)
        typer.echo(info.version)

    _run(to, endpoint_url, region, act)


@app.command()
def versions(registry_url: RegistryUrl, endpoint_url: Endpoint = None, region: Region = None) -> None:
    """Table of published versions: created, sha256, signed, eval summary, current for which routers."""
    def act(registry: RouterRegistry) -> None:
        rows = registry.versions()
        current = _current_by_version(registry)
        typer.echo(f"{'VERSION':8} {'CREATED':20} {'SHA256':12} {'SIGNED':9} {'EVAL':34} CURRENT")
        for v in rows:
            evals = " ".join(f"{_short(k)}={val:g}" for k, val in v.eval.items()) or "-"
            signed = v.signature_state(registry.signing_key)
            typer.echo(f"{v.version:8} {v.created_at[:19]:20} {v.sha256[:12]:12} {signed:9} {evals:34} "
                       f"{','.join(current.get(v.version, [])) or '-'}")

    _run(registry_url, endpoint_url, region, act)


@app.command()
def promote(registry_url: RegistryUrl, router: Router, version: Annotated[str, typer.Option()],
            endpoint_url: Endpoint = None, region: Region = None) -> None:
    """Point the router at a version; every scorer replica loads it at its next poll."""
    def act(registry: RouterRegistry) -> None:
        p = registry.promote(router, version)
        typer.echo(f"{router}: {p.current} (previous {p.previous or '-'})")

    _run(registry_url, endpoint_url, region, act)


@app.command()
def rollback(registry_url: RegistryUrl, router: Router, endpoint_url: Endpoint = None, region: Region = None) -> None:
    """Point the router back at its previous version."""
    def act(registry: RouterRegistry) -> None:
        p = registry.rollback(router)
        typer.echo(f"{router}: {p.current} (previous {p.previous})")

    _run(registry_url, endpoint_url, region, act)


def _current_by_version(registry: RouterRegistry) -> dict[str, list[str]]:
    """Version → routers whose pointer names it (routers found under ``pointers/``)."""
    out: dict[str, list[str]] = {}
    for router in registry.routers():
        pointer = registry.pointer(router)
        if pointer is not None:
            out.setdefault(pointer.current, []).append(router)
    return out


def _short(key: str) -> str:
    """The README protocol's names: C@Q_best is a share of C_best's cost, not a saving."""
    return {"quality_at_default": "q", "cost_at_default": "cost", "q_at_c_best_ratio": "Q@C_best/Q_best",
            "c_at_q_best_pct": "C@Q_best%"}.get(key, key)
