from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router_models.artifacts import ArtifactError, load_artifact
from router_models.artifacts.signing import SIGNATURE_FILE, SIGNING_KEY_ENV
from router_models.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.output and "eval" in result.output and "sign" in result.output


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
    bad = tmp_path / "bad"
    shutil.copytree(trained_mlp, bad)
    (bad / "weights.safetensors").write_bytes(b"not the weights")
    result = runner.invoke(app, ["eval", "--router-dir", str(bad), "--data", str(data_dir / "eval.jsonl")])
    assert result.exit_code == 2
    assert "sha256" in result.output


def _default_copy(tmp_path: Path) -> Path:
    """The shipped default artifact, copied (`sign` writes into it) and unsigned, as it ships."""
    src = Path(__file__).resolve().parents[3] / "router_models" / "pretrained" / "default"
    out = Path(shutil.copytree(src, tmp_path / "default"))
    (out / SIGNATURE_FILE).unlink(missing_ok=True)  # an operator may have signed their checkout's copy
    return out


def test_sign_makes_the_shipped_default_loadable_by_a_scorer_that_requires_signatures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    artifact = _default_copy(tmp_path)
    key_file = tmp_path / "signing-key"
    key_file.write_bytes(b"0123456789abcdef-operator-key\n")  # exact bytes, newline included (as a Secret)
    with pytest.raises(ArtifactError, match=r"manifest\.sig is missing"):
        load_artifact(artifact, signing_key=key_file.read_bytes())

    result = runner.invoke(app, ["sign", str(artifact), "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert load_artifact(artifact, signing_key=key_file.read_bytes()).tensors
    with pytest.raises(ArtifactError, match="bad signature"):
        load_artifact(artifact, signing_key=b"0123456789abcdef-operator-key")  # the newline is part of the key

    monkeypatch.setenv(SIGNING_KEY_ENV, "from-the-environment")  # what the pods' env holds
    assert runner.invoke(app, ["sign", str(artifact)]).exit_code == 0
    assert load_artifact(artifact).manifest["router_type"]


def test_sign_refuses_a_tampered_artifact_and_a_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    artifact = _default_copy(tmp_path)
    result = runner.invoke(app, ["sign", str(artifact)])
    assert result.exit_code == 2 and "no signing key" in result.output

    (artifact / "weights.safetensors").write_bytes(b"not the weights")
    key_file = tmp_path / "k"
    key_file.write_bytes(b"operator-key")
    result = runner.invoke(app, ["sign", str(artifact), "--key-file", str(key_file)])
    assert result.exit_code == 2 and "sha256" in result.output
    assert not (artifact / SIGNATURE_FILE).exists(), "nothing is signed that does not match its manifest"


def test_train_without_the_train_extra_is_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving install has no torch: `routeiq train` says what to install instead of embedding for a minute."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "router")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: training needs torch (the `train` extra): run `make install-train`"
    assert not (tmp_path / "router").exists()
