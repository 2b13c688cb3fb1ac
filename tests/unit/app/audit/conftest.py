"""The audit export on real parts: a database of the session's Postgres (or a SQLite file)
at the access schema's head, and moto's S3 (the session's, or a private one to stop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.access.db import async_db_url
from app.access.migrate import upgrade
from app.access.store import AccessStore
from app.audit.objects import decode
from app.config import AuditSettings
from devtools.s3_server import S3Server
from devtools.services import PostgresServer


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.db"
        return
    pg = request.getfixturevalue("postgres_server")
    assert isinstance(pg, PostgresServer)
    name = pg.create_database()
    yield pg.url(name)
    pg.drop_database(name)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(async_db_url(db_url))
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> AccessStore:
    return AccessStore(engine)


@pytest.fixture
def own_s3() -> Iterator[S3Server]:
    """A private S3 server this test may stop (an outage the data survives)."""
    server = S3Server().start()
    yield server
    server.stop()


def settings(s3: S3Server, bucket: str, spool: Path, **kw: Any) -> AuditSettings:
    return AuditSettings(export_url=f"s3://{bucket}/audit", endpoint_url=s3.url, region="us-east-1",
                         spool_dir=str(spool), batch_rows=3, settle_s=0.001, timeout_s=2.0, **kw)


def exported(s3: S3Server, bucket: str) -> dict[str, list[int]]:
    """Object key → the audit ids it holds (the bucket read back through a plain client)."""
    client = s3.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = [int(r["id"]) for r in decode(body)]
    return out


def all_ids(objects: dict[str, list[int]]) -> list[int]:
    return sorted(i for ids in objects.values() for i in ids)


async def write_rows(store: AccessStore, n: int) -> None:
    for i in range(n):
        await store.audit("master", "key.update", f"key_{i}", "success", {"i": i})
