"""How the tests check a RayCronJob without its CRD (KubeRay does not ship it to us vendored,
and we do not copy it): the wrapper fields against a small schema written here from the
documented field lists, the embedded ``rayClusterSpec`` against the vendored RayCluster
CRD's own ``spec`` schema, and the cron string by a five-field parser.

The wrapper schema is ours, not KubeRay's: RayCronJob's fields as the RayCronJob quickstart
lists them (``schedule``, ``jobTemplate``, ``suspend``) and the RayJob spec fields of the
RayJob quickstart and KubeRay's ``RayJobSpec`` (``ray-operator/apis/ray/v1/rayjob_types.go``),
with types but without KubeRay's defaults or CEL rules. An unknown field is rejected, which
is what catches a typo; a field KubeRay added after those pages would be rejected too (add it
here, from the docs, when the manifest needs it).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.unit.kuberay.conftest import KUBERAY, strict_schema

_INT = {"type": "integer"}
_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": _STR}
_OBJ = {"type": "object"}

RAYJOB_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "entrypoint": _STR,
        "rayClusterSpec": _OBJ,   # checked against the RayCluster CRD separately
        "clusterSelector": _STR_MAP,
        "submitterPodTemplate": _OBJ,   # checked as a core PodTemplate separately
        "submitterConfig": {"type": "object", "additionalProperties": False,
                            "properties": {"backoffLimit": {"type": "integer", "minimum": 0}}},
        "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
        "shutdownAfterJobFinishes": {"type": "boolean"},
        "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
        "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
        "backoffLimit": {"type": "integer", "minimum": 0},
        "runtimeEnvYAML": _STR,
        "jobId": _STR,
        "metadata": _STR_MAP,
        "entrypointNumCpus": {"type": "number"},
        "entrypointNumGpus": {"type": "number"},
        "entrypointResources": _STR,
        "suspend": {"type": "boolean"},
        "managedBy": {"enum": ["ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue"]},
        "deletionStrategy": _OBJ,
    },
}

RAYCRONJOB = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCronJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["schedule", "jobTemplate"],
            "properties": {"schedule": _STR, "suspend": {"type": "boolean"}, "jobTemplate": RAYJOB_SPEC},
        },
    },
}


@cache
def raycluster_spec_validator() -> jsonschema.Draft7Validator:
    """The vendored RayCluster CRD's ``spec`` schema: a RayJob's rayClusterSpec is that type."""
    crd = yaml.safe_load((KUBERAY / "crds" / "ray.io_rayclusters.yaml").read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(strict_schema(v1["schema"]["openAPIV3Schema"]["properties"]["spec"]))


def raycronjob_errors(doc: dict[str, Any]) -> list[str]:
    """Every schema error of a RayCronJob: the wrapper, then its cluster spec."""
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(RAYCRONJOB).iter_errors(doc)]
    cluster = doc.get("spec", {}).get("jobTemplate", {}).get("rayClusterSpec")
    if cluster is None:
        errors.append("spec.jobTemplate.rayClusterSpec: missing (the loop needs its own cluster)")
    else:
        errors += [f"rayClusterSpec {list(e.path)}: {e.message}"
                   for e in raycluster_spec_validator().iter_errors(cluster)]
    if not valid_cron(str(doc.get("spec", {}).get("schedule", ""))):
        errors.append(f"spec.schedule: not a five-field cron string: {doc.get('spec', {}).get('schedule')!r}")
    return errors


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_ITEM = re.compile(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?")


def valid_cron(schedule: str) -> bool:
    """Standard five-field cron (minute hour day-of-month month day-of-week): numbers, ``*``,
    ranges, lists and steps, each in its field's range. Names and ``@daily`` are not used here."""
    fields = schedule.split()
    if len(fields) != 5:
        return False
    for field, (low, high) in zip(fields, _CRON_RANGES, strict=True):
        for item in field.split(","):
            m = _CRON_ITEM.fullmatch(item)
            if not m:
                return False
            start, end, step = m.group(2), m.group(3), m.group(4)
            numbers = [int(x) for x in (start, end) if x is not None]
            if any(not low <= n <= high for n in numbers) or (end and int(end) < int(start)):
                return False
            if step is not None and int(step) == 0:
                return False
    return True


def daily(schedule: str) -> bool:
    """Once a day: a fixed minute and hour, every day (the period the run deadline is set against)."""
    fields = schedule.split()
    return valid_cron(schedule) and fields[0].isdigit() and fields[1].isdigit() and fields[2:] == ["*"] * 3
