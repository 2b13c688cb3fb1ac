from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from router_models.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.output and "eval" in result.output


def test_eval_json_is_one_object(trained_mlp: Path, data_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "curve.png"
    args = [
        "eval",
        "--router-dir",
        str(trained_mlp),
        "--data",
        str(data_dir / "eval.jsonl"),
        "--train-data",
        str(data_dir / "train.jsonl"),
        "--json",
        "--plot",
        str(png),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("q_at_c_best", "c_at_q_best_pct", "q_best", "c_best", "oracle", "curve"):
        assert key in obj
    assert {"lambda", "quality", "cost"} <= set(obj["curve"][0])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_refuses_tampered_artifact(trained_mlp: Path, data_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained_mlp, bad)
    (bad / "weights.safetensors").write_bytes(b"not the weights")
    result = runner.invoke(app, ["eval", "--router-dir", str(bad), "--data", str(data_dir / "eval.jsonl")])
    assert result.exit_code == 2
    assert "sha256" in result.output
