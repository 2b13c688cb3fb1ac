"""``routeiq``: one console script over router_models' commands and the decision log's."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from app.cli import build_cli


def test_root_lists_the_learned_router_and_decision_log_commands() -> None:
    result = CliRunner().invoke(build_cli(), ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("train", "eval", "compare", "publish", "versions", "promote", "rollback", "decisions"):
        assert command in result.output
    result = CliRunner().invoke(build_cli(), ["decisions", "--help"])
    assert result.exit_code == 0 and "export" in result.output


def test_building_the_cli_loads_no_model_or_serving_library() -> None:
    code = (
        "import sys, app.cli; app.cli.build_cli();"
        "print(','.join(m for m in ('ray', 'torch', 'llmrouter', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
