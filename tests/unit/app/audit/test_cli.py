"""``routeiq audit export``: a backfill to moto's S3 from a SQLite audit log; reruns overwrite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from app.access.db import async_db_url
from app.access.migrate import upgrade
from app.access.store import AccessStore
from app.cli import build_cli
from devtools.s3_server import S3Server
from tests.unit.app.audit.conftest import all_ids, exported, write_rows


def _seed(url: str, n: int) -> None:
    async def run() -> None:
        engine = create_async_engine(async_db_url(url))
        await upgrade(engine)
        await write_rows(AccessStore(engine), n)
        await engine.dispose()

    asyncio.run(run())


def test_backfill_writes_every_row_once_and_a_rerun_overwrites(s3_server: S3Server, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    _seed(url, 7)
    bucket = s3_server.new_bucket()
    args = ["audit", "export", "--since", "2000-01-01", "--to", f"s3://{bucket}/backfill", "--database-url", url,
            "--endpoint-url", s3_server.url, "--region", "us-east-1", "--batch-rows", "3"]
    runner = CliRunner()
    first = runner.invoke(build_cli(), args)
    assert first.exit_code == 0, first.output
    assert "exported 7 audit rows in 3 objects" in first.output
    objects = exported(s3_server, bucket)
    assert all_ids(objects) == list(range(1, 8)) and all(k.startswith("backfill/dt=") for k in objects)
    again = runner.invoke(build_cli(), args)
    assert again.exit_code == 0 and exported(s3_server, bucket) == objects  # same names, same rows


def test_errors_are_one_line(s3_server: S3Server, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    _seed(url, 1)
    runner = CliRunner()
    bad_url = runner.invoke(build_cli(), ["audit", "export", "--since", "2000-01-01", "--to", "gs://x",
                                          "--database-url", url])
    assert bad_url.exit_code == 2 and bad_url.output.strip().count("\n") == 0 and "s3://" in bad_url.output
    no_bucket = runner.invoke(build_cli(), ["audit", "export", "--since", "2000-01-01", "--to", "s3://no-such-bucket",
                                            "--database-url", url, "--endpoint-url", s3_server.url,
                                            "--region", "us-east-1"])
    assert no_bucket.exit_code == 1 and "NoSuchBucket" in no_bucket.output
    assert no_bucket.output.strip().splitlines()[-1].startswith("error: upload to s3://no-such-bucket failed")
