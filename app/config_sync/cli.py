"""``routeiq config validate`` and ``routeiq config diff``: the sync's checks, offline.

``validate`` runs exactly what a replica runs on a new version before applying it
(``validate.validate_text``), so a version that passes here is one the gateway accepts
(given the same environment: secrets and signing key). Problems go to stderr, one per
line, exit 1. S3 locations use ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``) and the
standard AWS credentials.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.config import ConfigError, ConfigSyncSettings, GatewayConfig, parse_config_text
from app.config_sync.source import SourceError, open_source

app = typer.Typer(help="The gateway config: validate a version, diff two (docs/operations.md).",
                  no_args_is_help=True)
Endpoint = Annotated[str | None, typer.Option(help="S3-compatible endpoint for s3:// locations "
                                                   "(default: AWS_ENDPOINT_URL, else AWS S3).")]


def _read(location: str, endpoint_url: str | None) -> str:
    settings = ConfigSyncSettings(endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
    return open_source(location, settings).fetch().text


def _fail(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)
    raise typer.Exit(1)


@app.command("validate")
def validate(
    location: Annotated[str, typer.Argument(help="A config file, or s3://bucket/key.")],
    endpoint_url: Endpoint = None,
    root: Annotated[Path | None, typer.Option(help="Directory relative artifact paths start from "
                                                   "(default: the working directory).")] = None,
) -> None:
    """Validate a config completely (schema, secrets, artifacts, router candidates); exit 1 on any problem."""
    from app.config_sync.validate import validate_text

    try:
        cfg = validate_text(_read(location, endpoint_url), location, root)
    except SourceError as err:
        _fail([f"config error: {err}"])
    except ConfigError as err:
        _fail([f"config error: {p}" for p in err.problems])
    else:
        print(f"{location}: ok ({len(cfg.model_list)} models, {len(cfg.router_settings.routers)} routers)")


@app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="The config before (file or s3://bucket/key).")],
    new: Annotated[str, typer.Argument(help="The config after.")],
    endpoint_url: Endpoint = None,
) -> None:
    """Print what changes from OLD to NEW: models, routers, provider groups added (+), removed (-), changed (~)."""
    from app.config_sync.changes import graph_changes
    from app.config_sync.diff import diff_configs

    before, after = _parsed(old, endpoint_url), _parsed(new, endpoint_url)
    lines = diff_configs(before, after)
    for line in lines or ["no differences"]:
        print(line)
    if lines:
        reasons = graph_changes(before, after)
        print("applies by a Serve update: " + "; ".join(reasons) if reasons else "applies in place")


def _parsed(location: str, endpoint_url: str | None) -> GatewayConfig:
    try:
        return parse_config_text(_read(location, endpoint_url), location)
    except SourceError as err:
        _fail([f"config error: {err}"])
    except ConfigError as err:
        _fail([f"config error: {p if p.startswith(location) else f'{location}: {p}'}" for p in err.problems])
    raise AssertionError("unreachable")
