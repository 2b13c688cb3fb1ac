"""``routeiq decisions``: the decision log's commands, next to the store they read.

``app.cli`` mounts this sub-app on the ``routeiq`` console script; ``router_models``
never sees it (it imports nothing from ``app``). The database modules are imported
inside the command, so ``routeiq train`` and ``routeiq --help`` do not load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.access.cli_options import DEFAULT_CONFIG, ConfigOption, DatabaseUrlOption, database_engine, iso_time

app = typer.Typer(help="The routing decision log (docs/observability.md).", no_args_is_help=True)


@app.command("export")
def export(
    config: ConfigOption = DEFAULT_CONFIG,
    database_url: DatabaseUrlOption = None,
    since: Annotated[str | None, typer.Option(help="Only decisions at or after this ISO 8601 time.")] = None,
    out: Annotated[Path | None, typer.Option(help="JSONL file to write; default stdout.")] = None,
    training: Annotated[bool, typer.Option(help='Write {"query", "scores": {chosen: feedback}} rows only.')] = False,
) -> None:
    """Export routing decisions as JSON lines (oldest first), for audits and retraining."""
    import asyncio
    import sys

    from app.access.decision_store import DecisionStore, export_jsonl
    from app.access.store import StoreUnavailableError
    from app.config import ConfigError

    start = iso_time(since or None, "--since")

    async def run() -> int:
        engine = database_engine(config, database_url)
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

