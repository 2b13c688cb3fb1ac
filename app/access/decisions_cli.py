"""``routeiq decisions``: the decision log's commands, next to the store they read.

``app.cli`` mounts this sub-app on the ``routeiq`` console script; ``router_models``
never sees it (it imports nothing from ``app``). The database modules are imported
inside the command, so ``routeiq train`` and ``routeiq --help`` do not load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(help="The routing decision log (docs/observability.md).", no_args_is_help=True)


@app.command("export")
def export(
    config: Annotated[
        Path, typer.Option(help="Gateway config: its database (or DATABASE_URL, or the SQLite file).")
    ] = Path("configs/demo.yaml"),
    database_url: Annotated[
        str | None, typer.Option(help="postgresql://... or sqlite:///path (wins over --config).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only decisions at or after this ISO 8601 time.")] = None,
    out: Annotated[Path | None, typer.Option(help="JSONL file to write; default stdout.")] = None,
    training: Annotated[bool, typer.Option(help='Write {"query", "scores": {chosen: feedback}} rows only.')] = False,
) -> None:
    """Export routing decisions as JSON lines (oldest first), for audits and retraining."""
    import asyncio
    import sys
    from datetime import UTC, datetime

    from app.access.decision_store import DecisionStore, export_jsonl
    from app.access.store import StoreUnavailableError
    from app.config import ConfigError

    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {since!r}", param_hint="--since") from None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)

    async def run() -> int:
        engine = _decision_engine(config, database_url)
        try:
            store = DecisionStore(engine, timeout_s=30)
            if out is None:
                return await export_jsonl(store, sys.stdout, start, training)
            with out.open("w", encoding="utf-8") as fh:
                return await export_jsonl(store, fh, start, training)
        finally:
            await engine.dispose()

    try:
        n = asyncio.run(run())
    except (ConfigError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except StoreUnavailableError as err:
        typer.echo(
            f"error: cannot read routeiq_decisions ({err.__cause__ or err}); "
            "is the database reachable and has the gateway started on it?",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"exported {n} decisions" + (f" to {out}" if out else ""), err=True)


def _decision_engine(config: Path, database_url: str | None) -> AsyncEngine:
    """``--database-url`` as given, else the database the gateway's config resolves to."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.access.db import async_db_url, build_engine
    from app.config import load_config

    if database_url:
        return create_async_engine(async_db_url(database_url))
    return build_engine(load_config(config).general_settings)
