"""``routeiq retrain`` end to end without Serve: a decision log (SQLite) where exploration
served a model the registry's router does not know, a real S3-compatible registry (moto),
and the loop: export, train (knn, small), gate, publish, promote."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.access.decision_store import DecisionStore, decision_row
from app.access.migrate import upgrade
from app.cli import build_cli
from app.config import DecisionLogSettings
from app.gateway.decisions import DecisionRecord
from devtools.registry import new_registry
from devtools.s3_server import S3Server
from router_models.data import DEFAULT_CANDIDATES, DEFAULT_TRAIN
from router_models.inference.learned import LearnedRouter
from router_models.training.pipeline import TrainConfig, train
from tests.unit.router_models.conftest import write_slice

NEW, KNOWN = "our-llama", "qwen2.5-7b-instruct"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("retrain")
    prices = json.loads(DEFAULT_CANDIDATES.read_text())
    prices[NEW] = {"input_price": 0.05, "output_price": 0.05}
    (root / "prices.json").write_text(json.dumps(prices))
    base = write_slice(DEFAULT_TRAIN, root / "base.jsonl", 300, seed=21)
    held = write_slice(DEFAULT_TRAIN, root / "held.jsonl", 60, seed=22)
    current = root / "current"
    train(TrainConfig(router_type="knn", data=base, out=current, folds=1, cache_dir=root / "cache",
                      hparam={"n_neighbors": 5}))
    return {"prices": root / "prices.json", "base": base, "held": held, "current": current}


def write_log(db: Path, base: Path, n: int) -> None:
    """``n`` rated decisions: our-llama explored (p 0.25) on half, qwen (p 0.75) on the rest."""
    rows = [json.loads(line) for line in base.read_text().splitlines()[:n]]

    async def go() -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
        await upgrade(engine)
        out = []
        for i, r in enumerate(rows):
            model, p = (NEW, 0.25) if i % 2 else (KNOWN, 0.75)
            score = r["scores"][KNOWN]  # our-llama answers as well as qwen
            record = DecisionRecord(request_id=f"r{i}", created_at=time.time(), key_id="k", router="auto",
                                    strategy="learned:knn", lam=0.0, query=r["query"],
                                    candidates={KNOWN: 0.5, NEW: None}, chosen=model, routed_to=model, status=200,
                                    propensity=p, explored=model == NEW)
            row = decision_row(record, DecisionLogSettings())
            out.append({**row, "feedback": score, "feedback_at": datetime.now(UTC)})
        await DecisionStore(engine).write(out)
        await engine.dispose()

    asyncio.run(go())


def test_retrain_learns_an_unknown_model_from_the_log_and_promotes_it(
    s3_server: S3Server, files: dict[str, Path], tmp_path: Path,
) -> None:
    registry = new_registry(s3_server)
    v1 = registry.publish(files["current"]).version
    registry.promote("auto", v1)
    db = tmp_path / "decisions.db"
    write_log(db, files["base"], 120)
    args = ["retrain", "--registry", f"s3://{registry.location.bucket}/{registry.location.prefix}",
            "--endpoint-url", s3_server.url, "--database-url", f"sqlite:///{db}", "--eval-data", str(files["held"]),
            "--base-data", str(files["base"]), "--candidates", str(files["prices"]), "--router-type", "knn",
            "--folds", "1", "--work", str(tmp_path / "work"),
            "--margin-ope", "1", "--margin-q", "1", "--margin-c", "1000"]  # a tiny router: judge the loop, not it
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    trained, held = map(int, re.search(r"promoted v2 \(trained on (\d+) rated rows of 120; (\d+) held out",
                                       result.output).groups())  # type: ignore[union-attr]
    assert trained + held == 120 and 10 <= held <= 40  # the default 20 % of the queries, by hash
    served = registry.current("auto")
    assert served.version == "v2"
    registry.fetch(served, tmp_path / "v2")
    router = LearnedRouter.load(tmp_path / "v2")
    assert NEW in router.models  # the promoted router scores the model only exploration served
    report = json.loads((tmp_path / "work" / "gate" / "gate.json").read_text())
    assert report["passed"] and report["off_policy"]["rows"] == held  # the gate reads only the held-out rows
    split_rows = len(files["held"].read_text().splitlines())
    assert f"warning: the labelled split has {split_rows} rows" in result.output  # too few to decide on
    assert json.loads((tmp_path / "work" / "result.json").read_text())["warnings"] == report["warnings"]
    gate_queries = {json.loads(x)["query"] for x in (tmp_path / "work" / "decisions" / "gate-log.jsonl").open()}
    trained_queries = {json.loads(x)["query"]
                       for x in (tmp_path / "work" / "decisions" / "feedback-train.jsonl").open()}
    assert gate_queries and not gate_queries & trained_queries
    assert (tmp_path / "work" / "gate" / "gate.png").exists()

    kept = CliRunner().invoke(build_cli(), [*args, "--no-promote", "--work", str(tmp_path / "work2")])
    assert kept.exit_code == 0 and "published v3, passed the gate, not promoted" in kept.output
    assert registry.current("auto").version == "v2"
    # the same data again is no better than v2: `--split-evidence better` refuses what `point` passed
    same = CliRunner().invoke(build_cli(), [*args, "--split-evidence", "better", "--work", str(tmp_path / "work3")])
    assert same.exit_code == 1 and "of paired resamples of the labelled split (needs 90 %)" in same.output
    assert registry.current("auto").version == "v2"


def test_a_static_router_retrains_on_the_static_embedder(
    s3_server: S3Server, files: dict[str, Path], tmp_path: Path,
) -> None:
    """A router chosen for the static embedder's speed keeps it: the gate compares quality only."""
    from router_models.static_embedding import StaticEmbedder, static_config

    current = tmp_path / "static"
    train(TrainConfig(router_type="knn", data=files["base"], out=current, folds=1, cache_dir=None,
                      hparam={"n_neighbors": 5}, embedder=static_config()))
    registry = new_registry(s3_server)
    registry.promote("auto", registry.publish(current).version)
    db = tmp_path / "decisions.db"
    write_log(db, files["base"], 120)
    args = ["retrain", "--registry", f"s3://{registry.location.bucket}/{registry.location.prefix}",
            "--endpoint-url", s3_server.url, "--database-url", f"sqlite:///{db}", "--eval-data", str(files["held"]),
            "--base-data", str(files["base"]), "--candidates", str(files["prices"]), "--folds", "1",
            "--margin-ope", "1", "--margin-q", "1", "--margin-c", "1000"]
    refused = CliRunner().invoke(build_cli(), [*args, "--router-type", "finetuned", "--work", str(tmp_path / "w1")])
    assert refused.exit_code == 2
    assert refused.output.strip().startswith("error: router type 'finetuned' tunes the MiniLM encoder; a static "
                                             "embedder has none")
    result = CliRunner().invoke(build_cli(), [*args, "--router-type", "knn", "--work", str(tmp_path / "w2")])
    assert result.exit_code == 0, result.output
    registry.fetch(registry.current("auto"), tmp_path / "v2")
    router = LearnedRouter.load(tmp_path / "v2")
    assert isinstance(router.embedder, StaticEmbedder) and NEW in router.models


def test_a_log_without_feedback_is_one_line(s3_server: S3Server, files: dict[str, Path], tmp_path: Path) -> None:
    registry = new_registry(s3_server)
    db = tmp_path / "empty.db"

    async def schema() -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(schema())
    result = CliRunner().invoke(build_cli(), [
        "retrain", "--registry", f"s3://{registry.location.bucket}/{registry.location.prefix}",
        "--endpoint-url", s3_server.url, "--database-url", f"sqlite:///{db}", "--eval-data", str(files["held"]),
        "--work", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: the decision log has no rated request to learn from (POST /v1/feedback)"


def test_the_best_single_model_may_be_one_only_the_labelled_split_scores() -> None:
    """The gate's split scores the user's new model (``routeiq label``) before the base set has it:
    its mean comes from the split, the others' from the base."""
    import numpy as np

    from app.retrain import single_model_means
    from router_models.data import RoutingData

    base = RoutingData(["a", "b"], np.array([[0.2, 0.4], [0.4, 0.4]], np.float32), ["m1", "m2"], np.array([1.0, 1.0]))
    split = RoutingData(["c", "d"], np.array([[1.0, 0.0, 0.9], [1.0, 0.0, 0.7]], np.float32), ["m2", "m1", NEW],
                        np.array([1.0, 1.0, 1.0]))
    assert np.allclose(single_model_means(base, split), [0.4, 0.3, 0.8])


def test_the_gate_holdout_is_a_stable_share_of_queries_and_the_cli_default_is_the_modules() -> None:
    import typer

    from app.retrain import GATE_HOLDOUT, held_out
    from app.retrain_cli import app as retrain_app

    queries = [f"query {i}" for i in range(4000)]
    first = [held_out(q, 0.2) for q in queries]
    assert first == [held_out(q, 0.2) for q in queries]  # the same side in every round
    assert 0.17 < sum(first) / len(queries) < 0.23
    assert not any(held_out(q, 0.0) for q in queries) and not held_out(None, 0.5)
    assert all(held_out(q, 0.3) for q, h in zip(queries, first, strict=True) if h)  # nested: a larger share adds
    (opt,) = [p for p in typer.main.get_command(retrain_app).params if p.name == "gate_holdout"]
    assert opt.default == GATE_HOLDOUT


def test_the_shipped_loop_runs_where_the_drivers_paths_do_not_exist_and_brings_the_report_back(
    s3_server: S3Server, files: dict[str, Path], tmp_path: Path,
) -> None:
    """``--ray``'s task body without Ray: the inputs travel as bytes, the task works in its own
    directory and builds its own registry client, and the driver's work dir gets the report."""
    import shutil

    from sqlalchemy.ext.asyncio import create_async_engine

    from app.retrain import RetrainPlan, export_decisions
    from app.retrain_ray import RegistrySpec, pack, receive, run_shipped

    registry = new_registry(s3_server)
    registry.promote("auto", registry.publish(files["current"]).version)
    db = tmp_path / "decisions.db"
    write_log(db, files["base"], 120)
    driver = tmp_path / "driver"
    driver.mkdir()
    for name in ("base", "held", "prices"):
        shutil.copy(files[name], driver / files[name].name)

    async def export() -> Any:
        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
        try:
            return await export_decisions(DecisionStore(engine), driver / "work" / "decisions")
        finally:
            await engine.dispose()

    exported = asyncio.run(export())
    plan = RetrainPlan(router="auto", work=driver / "work", base_data=driver / files["base"].name,
                       eval_data=driver / files["held"].name, candidates=driver / files["prices"].name,
                       router_type="knn", folds=1, margins={"ope": 1, "q_ratio": 1, "c_pct": 1000})
    shipment = pack(plan, exported)
    shutil.rmtree(driver / "work")
    driver.rename(tmp_path / "elsewhere")  # nothing the driver named exists for the task
    spec = RegistrySpec(f"s3://{registry.location.bucket}/{registry.location.prefix}", s3_server.url)
    shipped = run_shipped(shipment, spec, tmp_path / "task")
    assert shipped.result.promoted and shipped.result.version == "v2" and registry.current("auto").version == "v2"
    assert sorted(shipped.files) == ["decisions/feedback-train.jsonl", "decisions/gate-log.jsonl",
                                     "gate/gate.json", "gate/gate.png"]
    result = receive(shipped, driver / "work")
    assert json.loads((driver / "work" / "gate" / "gate.json").read_text())["passed"] is True
    assert result.trained_on["pid"] > 0 and result.feedback_rows + result.gate_rows == 120
