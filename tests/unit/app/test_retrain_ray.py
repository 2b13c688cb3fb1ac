"""``routeiq retrain --ray`` without Ray: the resource flag, the task's options, and the files
that travel to the task and back as bytes (the loop itself shipped: test_retrain; through a
real Ray task: tests/integration/test_learning_loop.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import build_cli
from app.retrain import Exported, RetrainPlan, RetrainResult
from app.retrain_ray import (
    RayRunError,
    Shipped,
    fits_a_node,
    pack,
    parse_resources,
    ray_options,
    receive,
    unpack,
    wait_for_fit,
    write_result,
)


def test_resources_parse_from_a_json_object_of_non_negative_amounts() -> None:
    assert parse_resources('{"CPU": 2, "routeiq-train": 1}') == {"CPU": 2.0, "routeiq-train": 1.0}
    assert parse_resources('{"CPU": 0.5}') == {"CPU": 0.5}


@pytest.mark.parametrize(("text", "says"), [
    ('{"CPU": 2,', "is not JSON"),
    ('["CPU"]', "must be a non-empty JSON object"),
    ("{}", "must be a non-empty JSON object"),
    ('{"CPU": -1}', "'CPU' must be a resource name with a non-negative number"),
    ('{"CPU": true}', "'CPU' must be"),
    ('{"CPU": "2"}', "'CPU' must be"),
    ('{"": 1}', "'' must be"),
])
def test_bad_resources_are_one_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as err:
        parse_resources(text)
    assert "\n" not in str(err.value)


def test_cpu_gpu_and_memory_are_rays_keywords_and_the_rest_custom_resources() -> None:
    assert ray_options({"CPU": 2, "routeiq-train": 1}) == {"num_cpus": 2, "resources": {"routeiq-train": 1}}
    assert ray_options({"GPU": 1, "memory": 2e9}) == {"num_cpus": 0, "num_gpus": 1, "memory": 2e9}


def test_the_request_must_fit_one_node() -> None:
    head = {"CPU": 0.0, "memory": 1e9}
    worker = {"CPU": 2.0, "routeiq-train": 1.0}
    assert fits_a_node({"CPU": 2, "routeiq-train": 1}, [head, worker])
    assert not fits_a_node({"CPU": 3}, [head, worker])
    assert not fits_a_node({"routeiq-train": 1, "GPU": 1}, [head, worker])
    assert not fits_a_node({"CPU": 1}, [])


def _inputs(root: Path) -> tuple[RetrainPlan, Exported]:
    decisions = root / "driver" / "work" / "decisions"
    decisions.mkdir(parents=True)
    for name, text in (("log.jsonl", "log\n"), ("feedback.jsonl", "fb\n")):
        (decisions / name).write_text(text)
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text("base\n")
    (root / "data" / "prices.json").write_text("{}")
    plan = RetrainPlan(router="auto", work=root / "driver" / "work", base_data=root / "data" / "train.jsonl",
                       eval_data=root / "data" / ".." / "data" / "train.jsonl",  # the same file, named twice
                       candidates=root / "data" / "prices.json")
    return plan, Exported(decisions / "log.jsonl", decisions / "feedback.jsonl", 1, 1)


def test_every_input_travels_as_bytes_and_lands_under_the_tasks_own_directory(tmp_path: Path) -> None:
    plan, exported = _inputs(tmp_path)
    shipment = pack(plan, exported)
    assert sorted(shipment.files) == ["base.jsonl", "candidates.json", "decisions/feedback.jsonl",
                                      "decisions/log.jsonl"]  # the base set named twice travels once
    (tmp_path / "data").rename(tmp_path / "gone")  # the task's node has no such path
    task_plan, task_export = unpack(shipment, tmp_path / "task")
    assert task_plan.work == tmp_path / "task" / "work" and task_plan.router == "auto"
    assert task_plan.base_data == task_plan.eval_data and task_plan.base_data.read_text() == "base\n"
    assert task_plan.candidates.read_text() == "{}"
    assert task_export.log == task_plan.work / "decisions" / "log.jsonl"  # where holdout_split looks
    assert task_export.feedback.read_text() == "fb\n" and task_export.log_rows == 1


def test_the_tasks_files_and_result_land_in_the_drivers_work_directory(tmp_path: Path) -> None:
    result = RetrainResult("v2", True, True, [], 10, 12, 2, {"pid": 7, "host": "w", "node_id": "n"})
    work = tmp_path / "work"
    got = receive(Shipped(result, {"gate/gate.json": b"{}", "decisions/gate-log.jsonl": b"x\n"}), work)
    assert got is result
    assert (work / "gate" / "gate.json").read_bytes() == b"{}" and (work / "decisions" / "gate-log.jsonl").exists()
    import json

    written = json.loads(write_result(work, got).read_text())
    assert written["trained_on"] == {"pid": 7, "host": "w", "node_id": "n"} and written["version"] == "v2"


@pytest.mark.parametrize(("extra", "says"), [
    (["--ray", "--ray-resources", "{CPU: 2}"], "error: --ray-resources is not JSON"),
    (["--ray-resources", '{"CPU": 2}'], "error: --ray-resources applies only with --ray"),
])
def test_a_bad_ray_flag_is_one_line_before_anything_runs(tmp_path: Path, extra: list[str], says: str) -> None:
    result = CliRunner().invoke(build_cli(), [
        "retrain", "--registry", "s3://bucket/prefix", "--eval-data", str(tmp_path / "held.jsonl"),
        "--database-url", f"sqlite:///{tmp_path / 'none.db'}", "--work", str(tmp_path / "w"), *extra])
    assert result.exit_code == 2
    assert result.output.strip().startswith(says) and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()  # nothing exported


def test_the_task_waits_for_a_training_worker_that_joins_late_and_gives_up_after_its_deadline() -> None:
    head, worker = {"CPU": 0.0}, {"CPU": 2.0, "routeiq-train": 1.0}
    seen = iter([[head], [head], [head, worker]])
    assert wait_for_fit({"routeiq-train": 1}, lambda: next(seen), wait_s=60, poll_s=0) == [head, worker]
    calls = []
    with pytest.raises(RayRunError, match=r"no node of the Ray cluster offers \{'routeiq-train': 1\} after 0.05 s"):
        wait_for_fit({"routeiq-train": 1}, lambda: calls.append(1) or [head], wait_s=0.05, poll_s=0.01)
    assert len(calls) >= 2  # polled until the deadline, not once
