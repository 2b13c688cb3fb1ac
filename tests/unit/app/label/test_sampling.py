"""Reading a decision-log export and drawing a reproducible sample of it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.label.sampling import LabelError, read_export, sample


def _write(path: Path, rows: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _row(query: str | None, **kw: object) -> dict[str, object]:
    return {"query": query, "status": 200, "candidates": {"a": 0.5, "b": None}, "chosen": "a", "routed_to": "a",
            "feedback": None, **kw}


def test_only_answered_rows_with_a_query_are_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.jsonl", [
        _row("q1", feedback=0.5), _row(None), _row("q3", status=502), _row("  "), _row("q5", routed_to="b"),
    ])
    prompts = read_export(path)
    assert [p.query for p in prompts] == ["q1", "q5"]
    assert prompts[0].candidates == ("a", "b") and prompts[0].feedback == 0.5 and prompts[0].served == "a"
    assert prompts[1].served == "b" and prompts[1].feedback is None


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(orjson.dumps(_row("q1")).decode() + "\n\n{oops\n")
    with pytest.raises(LabelError, match=r"log.jsonl:3: not JSON"):
        read_export(path)
    with pytest.raises(LabelError, match="cannot read"):
        read_export(tmp_path / "missing.jsonl")


def test_the_sample_is_seeded_without_replacement_and_in_file_order(tmp_path: Path) -> None:
    prompts = read_export(_write(tmp_path / "log.jsonl", [_row(f"q{i}") for i in range(50)]))
    first = sample(prompts, 10, seed=7)
    assert [p.query for p in first] == [p.query for p in sample(prompts, 10, seed=7)]
    assert len({p.query for p in first}) == 10
    order = [int(p.query[1:]) for p in first]
    assert order == sorted(order)
    assert [p.query for p in sample(prompts, 10, seed=8)] != [p.query for p in first]
    assert len(sample(prompts, None, 0)) == len(sample(prompts, 500, 0)) == 50
