"""router_models stands alone: serving needs no llmrouter, ray or fastapi, and no ``app``.

The dependency points one way (``app``/``deployments`` → ``router_models``): the
gateway's CLI, config and stores compose router_models, never the reverse.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("app", "deployments")

SCRIPT = """
import json, sys
from router_models.inference.learned import LearnedRouter
router = LearnedRouter.load(sys.argv[1])
router.predict(["What is 2 + 2?", "Name the capital of Peru."])
heavy = [m for m in ("llmrouter", "ray", "fastapi", "litellm", "sklearn", "transformers", "torch", "scipy")
         if m in sys.modules]
print(json.dumps({"heavy": heavy}))
"""


def test_serving_path_imports_no_training_or_gateway_libraries(trained_mlp: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(trained_mlp)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
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
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``tree``, those inside functions included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_router_models_imports_nothing_from_the_gateway() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "router_models").rglob("*.py"))
        for line, module in imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if module.split(".")[0] in FORBIDDEN
    ]
    assert found == []


def test_the_import_scan_sees_imports_inside_functions() -> None:
    code = "import os\ndef f():\n    from app.config import load_config\n    import deployments.graph as g\n"
    assert list(imported_modules(ast.parse(code))) == [(1, "os"), (3, "app.config"), (4, "deployments.graph")]
