"""The options every ``routeiq`` command that reads the gateway's database shares.

``routeiq decisions export``, ``routeiq audit export`` and ``routeiq retrain`` find the
database the same way (``--database-url`` wins over the gateway config's), and take
times as ISO 8601; one definition keeps their help, defaults and errors the same. The
database modules are imported inside the functions, so ``routeiq --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_CONFIG = Path("configs/demo.yaml")
ConfigOption = Annotated[
    Path, typer.Option(help="Gateway config: its database (or DATABASE_URL, or the SQLite file).")
]
DatabaseUrlOption = Annotated[str | None, typer.Option(help="postgresql://... or sqlite:///path (wins over --config).")]


def database_engine(config: Path, database_url: str | None) -> AsyncEngine:
    """``--database-url`` as given, else the database the gateway's config resolves to."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.access.db import async_db_url, build_engine
    from app.config import load_config

    if database_url:
        return create_async_engine(async_db_url(database_url))
    return build_engine(load_config(config).general_settings)


def iso_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 option's value (UTC when it has no offset); a bad one is a usage error naming ``option``."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
