"""JSONL export: every row, every field, round-trips; the training form; ``routeiq decisions export``."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from app.access.decision_log import DecisionWriter
from app.access.decision_store import EXPORT_FIELDS, DecisionStore, export_jsonl
from app.cli import build_cli
from app.config import DecisionLogSettings
from tests.unit.app.access.conftest import MakeWriter, record


async def test_jsonl_round_trip(make_writer: MakeWriter) -> None:
    writer = await make_writer()
    for i in range(1203):  # more than one export page
        writer.record(record(i, created_at=1_700_000_000 + i))
    assert await writer.flush()
    assert await writer.feedback("req-3", 0.8, "key_a")
    buf = io.StringIO()
    assert await export_jsonl(writer.store, buf) == 1203
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["request_id"] for r in lines] == [f"req-{i}" for i in range(1203)]  # oldest first, no repeats
    first = lines[3]
    assert tuple(first) == EXPORT_FIELDS
    assert first["created_at"] == datetime.fromtimestamp(1_700_000_003, UTC).isoformat()
    assert first["feedback"] == 0.8 and first["candidates"] == {"tiny-model": 0.4, "big-model": 0.9}
    assert (first["query"], first["chosen"], first["lambda"]) == ("what is 2 + 2?", "big-model", 0.5)

    since = datetime.fromtimestamp(1_700_000_000 + 1200, UTC)
    buf = io.StringIO()
    assert await export_jsonl(writer.store, buf, since) == 3
    buf = io.StringIO()
    assert await export_jsonl(writer.store, buf, training=True) == 1
    assert json.loads(buf.getvalue()) == {"query": "what is 2 + 2?", "scores": {"big-model": 0.8}, "propensity": None}


def test_cli_export(tmp_path: Any) -> None:
    cli = build_cli()  # the routeiq console script
    db = tmp_path / "routeiq.db"

    async def seed() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
        writer = DecisionWriter(DecisionStore(engine), DecisionLogSettings())
        await writer.start()
        writer.record(record(1))
        await writer.close()

    asyncio.run(seed())
    out = tmp_path / "decisions.jsonl"
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    result = CliRunner().invoke(cli, ["decisions", "export", "--database-url", f"sqlite:///{db}",
                                      "--since", since, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["request_id"] for x in out.read_text().splitlines()] == ["req-1"]
    bad = CliRunner().invoke(cli, ["decisions", "export", "--database-url", "postgresql://postgres@127.0.0.1:1/x"])
    assert bad.exit_code == 1 and "cannot read routeiq_decisions" in bad.output
