"""``routeiq label`` end to end: the real gateway app (in-process under uvicorn, no Ray) in
front of the fake upstream on loopback, whose ``[[fake judge]]`` answers ``SCORE: x`` with the
label each model's answer carries (``[[fake grades=...]]``), so every expected score is known.
The rows written must load with the trainer's readers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import uvicorn
from typer.testing import CliRunner

from app.cli import build_cli
from app.config import parse_config
from app.label.budget import Budget
from app.label.labeller import Labeller, LabelPlan
from app.label.sampling import LabelError, LoggedPrompt, read_export
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import CHEAP, MASTER_KEY, MID, PRICEY, gateway_config
from devtools.servers import ThreadedFakeUpstream, free_port, wait_port
from router_models.data.loader import load_routing_data
from router_models.data.partial import load_feedback

RUBRIC = "Score correctness and concision. [[fake judge]]"
MODELS = (CHEAP, MID, PRICEY)
JUDGE = MID


@pytest.fixture(scope="module")
def gateway(upstream: ThreadedFakeUpstream) -> Iterator[str]:
    cfg = parse_config(gateway_config(upstream.url, access={"enabled": False}))
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), None))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _export(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _logged(query: str, served: str = CHEAP, feedback: float | None = None, **kw: Any) -> dict[str, Any]:
    return {"request_id": "r", "query": query, "status": 200, "candidates": dict.fromkeys(MODELS, None),
            "chosen": served, "routed_to": served, "feedback": feedback, **kw}


def _graded(i: int, cheap: str = "0.9", pricey: str = "0.25", mid: str = "0.5") -> str:
    return f"question {i} [[fake grades={CHEAP}:{cheap},{MID}:{mid},{PRICEY}:{pricey}]]"


def _label(gateway: str, prompts: list[LoggedPrompt], cap: float = 10.0, key: str = MASTER_KEY,
           **plan: Any) -> tuple[list[dict[str, Any]], Labeller]:
    rows: list[dict[str, Any]] = []

    async def go() -> None:
        async with openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0) as client:
            labeller = Labeller(client, LabelPlan(judge=JUDGE, rubric=RUBRIC, **plan), Budget(cap))
            holder.append(labeller)
            await labeller.label(prompts, rows.append)

    holder: list[Labeller] = []
    asyncio.run(go())
    return rows, holder[0]


def test_every_other_candidate_is_replayed_and_judged(gateway: str, tmp_path: Path) -> None:
    path = _export(tmp_path / "log.jsonl", [_logged(_graded(i), feedback=0.6 if i % 2 else None) for i in range(4)])
    rows, labeller = _label(gateway, read_export(path), concurrency=3)
    by_query = {r["query"]: r["scores"] for r in rows}
    assert by_query[_graded(1)] == {CHEAP: 0.6, MID: 0.5, PRICEY: 0.25}  # the served model keeps its feedback
    assert by_query[_graded(0)] == {CHEAP: 0.9, MID: 0.5, PRICEY: 0.25}  # no feedback: replayed too
    assert labeller.tally.rows == 4 and labeller.tally.scores == 10 and labeller.tally.calls == 20
    assert not labeller.tally.skipped and 0 < labeller.budget.spent < 10


def test_unusable_verdicts_and_failed_replays_skip_one_score(gateway: str, tmp_path: Path) -> None:
    rows_in = [_logged(_graded(0, cheap="n/a")), _logged(_graded(1, pricey="1.5")),
               _logged(_graded(2) + f" [[fake error=content_policy only={PRICEY}]]")]
    rows, labeller = _label(gateway, read_export(_export(tmp_path / "log.jsonl", rows_in)))
    scores = {r["query"].split(" [[")[0]: r["scores"] for r in rows}
    assert scores == {"question 0": {MID: 0.5, PRICEY: 0.25}, "question 1": {CHEAP: 0.9, MID: 0.5},
                      "question 2": {CHEAP: 0.9, MID: 0.5}}
    assert labeller.tally.skipped == {"unparseable_verdict": 2, "replay_failed": 1}


def test_a_row_with_nothing_to_replay_is_counted(gateway: str, tmp_path: Path) -> None:
    rows_in = [_logged("q0", feedback=0.5, candidates={CHEAP: None}), _logged("q1", candidates={})]
    rows, labeller = _label(gateway, read_export(_export(tmp_path / "log.jsonl", rows_in)))
    assert rows == [] and labeller.tally.calls == 0 and labeller.tally.skipped == {"nothing_to_replay": 2}


def test_the_budget_stops_the_run_before_it_is_exceeded(gateway: str, tmp_path: Path) -> None:
    prompts = read_export(_export(tmp_path / "log.jsonl", [_logged(_graded(i)) for i in range(6)]))
    _, full = _label(gateway, prompts, concurrency=1)
    cap = full.budget.spent / 2
    rows, cut = _label(gateway, prompts, cap=cap, concurrency=1)
    assert cut.budget.exhausted and 0 < len(rows) < 6
    assert cut.budget.spent <= cap
    assert cut.tally.skipped == {"cut_by_budget": 1}  # the row in progress; no later row is started
    assert "stopped by the budget" in cut.tally.summary(cut.budget)


def test_calls_go_one_at_a_time_until_one_has_a_price(gateway: str, tmp_path: Path) -> None:
    prompts = read_export(_export(tmp_path / "log.jsonl", [_logged(_graded(i)) for i in range(8)]))
    rows, labeller = _label(gateway, prompts, cap=1e-12, concurrency=4)
    assert rows == [] and labeller.tally.calls == 1  # the probe call; then nothing fits
    assert labeller.budget.exhausted and labeller.tally.skipped == {"cut_by_budget": 4}


def test_rows_load_with_the_trainers_readers(gateway: str, tmp_path: Path) -> None:
    prompts = read_export(_export(tmp_path / "log.jsonl", [_logged(_graded(i)) for i in range(3)]))
    rows, _ = _label(gateway, prompts, models=(CHEAP, PRICEY))
    out = tmp_path / "labels.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({m: {"input_price": 0.1, "output_price": 0.1} for m in MODELS}))
    full = load_routing_data(out, prices)  # every row scores both models: a --data set
    assert full.models == [CHEAP, PRICEY] and full.scores.tolist() == [[pytest.approx(0.9), 0.25]] * 3
    partial = load_feedback(out, prices)  # and a --feedback set, weight 1 (no propensity)
    assert partial.weights is not None and partial.weights.tolist() == [1.0] * 3


def test_a_refused_key_stops_the_run(gateway: str, tmp_path: Path) -> None:
    prompts = read_export(_export(tmp_path / "log.jsonl", [_logged(_graded(0))]))
    with pytest.raises(LabelError, match="refused the key"):
        _label(gateway, prompts, key="sk-wrong")


def test_the_command_writes_rows_and_one_summary_line(gateway: str, tmp_path: Path) -> None:
    export = _export(tmp_path / "log.jsonl", [_logged(_graded(i)) for i in range(5)])
    rubric = tmp_path / "rubric.txt"
    rubric.write_text(RUBRIC)
    out = tmp_path / "labels.jsonl"
    args = ["label", "--export", str(export), "--gateway", gateway, "--api-key", MASTER_KEY, "--judge", JUDGE,
            "--rubric", str(rubric), "--budget", "1", "--sample", "3", "--seed", "1", "--candidates",
            f"{CHEAP},{PRICEY}", "--out", str(out)]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and all(r["scores"] == {CHEAP: 0.9, PRICEY: 0.25} for r in lines)
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("labelled 3 rows (6 judged scores), 12 calls, $") and "skipped: none" in summary


@pytest.mark.parametrize(("change", "message"), [
    ({"--api-key": "sk-wrong"}, "error: the gateway refused the key (401)"),
    ({"--export": "missing.jsonl"}, "error: cannot read missing.jsonl"),
    ({"--budget": "0"}, "error: --budget must be > 0"),
    ({"--rubric": "empty.txt"}, "is empty: the judge needs a rubric"),
    ({"--gateway": "http://127.0.0.1:1"}, "error: cannot reach the gateway"),
])
def test_command_errors_are_one_line(gateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     change: dict[str, str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    _export(tmp_path / "log.jsonl", [_logged(_graded(0))])
    (tmp_path / "rubric.txt").write_text(RUBRIC)
    (tmp_path / "empty.txt").write_text("  \n")
    opts = {"--export": "log.jsonl", "--gateway": gateway, "--api-key": MASTER_KEY, "--judge": JUDGE,
            "--rubric": "rubric.txt", "--budget": "1", **change}
    result = CliRunner().invoke(build_cli(), ["label", *(x for kv in opts.items() for x in kv)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and message in errors[0], result.stderr
