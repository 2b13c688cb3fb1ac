"""The ingress deployment is a shell: its constructor is one call to ``compose``."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3] / "deployments/ingress.py"


def test_ingress_init_builds_nothing_itself() -> None:
    tree = ast.parse(SOURCE.read_text())
    ingress = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Ingress")
    init = next(n for n in ingress.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    body = [n for n in init.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) == 1, "Ingress.__init__ must be one call"
    calls = [n.func.id for n in ast.walk(body[0]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert calls == ["compose"]
