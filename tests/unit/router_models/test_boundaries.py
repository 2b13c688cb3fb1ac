"""Serving must load an artifact and predict without llmrouter, ray or fastapi."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from router_models.inference.learned import LearnedRouter
router = LearnedRouter.load(sys.argv[1])
router.predict(["What is 2 + 2?", "Name the capital of Peru."])
heavy = [m for m in ("llmrouter", "ray", "fastapi", "litellm", "sklearn", "transformers") if m in sys.modules]
print(json.dumps({"heavy": heavy}))
"""


def test_serving_path_imports_no_training_or_gateway_libraries(trained_mlp: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(trained_mlp)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"heavy": []}


def test_package_import_is_light() -> None:
    code = (
        "import sys, router_models.cli, router_models.inference.decide; "
        "print(sorted(m for m in ('torch', 'llmrouter') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.stdout.strip() == "[]"
