"""``routeiq audit export``: copy a time range of the audit log to S3 (a backfill).

The continuous export (``app.audit.exporter``) runs inside the gateway; this command is
for what it never saw: rows from before the export was configured, or a copy to another
bucket. Objects are named and encoded as the exporter's (``app.audit.objects``), so a
rerun with the same arguments overwrites the same objects instead of duplicating rows.
It reads the database and never moves the exporter's cursor. Errors are one line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from app.access.cli_options import DEFAULT_CONFIG, ConfigOption, DatabaseUrlOption, database_engine, iso_time

app = typer.Typer(help="The audit log (docs/security.md).", no_args_is_help=True)


@app.command("export")
def export(
    since: Annotated[str, typer.Option(help="Rows written at or after this ISO 8601 time (UTC if no offset).")],
    to: Annotated[str, typer.Option(help="s3://bucket/prefix to write the objects under.")],
    until: Annotated[str | None, typer.Option(help="Rows written before this time; default: now.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    database_url: DatabaseUrlOption = None,
    endpoint_url: Annotated[str | None, typer.Option(help="S3-compatible endpoint (MinIO, Ceph).")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region.")] = None,
    batch_rows: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per object at most.")] = 5000,
) -> None:
    """Export the audit rows of a time range to S3 as gzip JSONL objects partitioned by date."""
    import asyncio

    from app.access.store import StoreUnavailableError
    from app.audit.backfill import backfill
    from app.audit.objects import ExportUrlError, parse_export_url
    from app.audit.sink import AuditSinkError, S3Sink
    from app.config import AuditSettings, ConfigError

    start, end = iso_time(since, "--since"), iso_time(until, "--until")
    assert start is not None

    async def run() -> tuple[int, int]:
        target = parse_export_url(to)
        sink = S3Sink(AuditSettings(export_url=to, endpoint_url=endpoint_url, region=region))
        engine = database_engine(config, database_url)
        try:
            return await backfill(engine, sink, target, start, end, batch_rows)
        finally:
            await engine.dispose()

    try:
        rows, objects = asyncio.run(run())
    except (ConfigError, ExportUrlError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except StoreUnavailableError as err:
        typer.echo(f"error: cannot read routeiq_audit_log ({err.__cause__ or err})", err=True)
        raise typer.Exit(1) from None
    except AuditSinkError as err:
        typer.echo(f"error: upload to {to} failed: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"exported {rows} audit rows in {objects} objects to {to}", err=True)
