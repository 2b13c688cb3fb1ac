"""``routeiq retrain --ray``: the CPU-bound half of the loop (train, gate, publish, promote) as
one Ray task, the export staying in the driver next to the database.

On a multi-node cluster the task's disk is not the driver's, so nothing travels as a path:
the driver packs every file the task reads (the export, the base set, the labelled split,
the prices) as bytes (``pack``), the task unpacks them into its own temporary directory
(``unpack``), runs ``app.retrain.retrain`` there against a registry it builds itself from a
picklable recipe (``RegistrySpec``: a boto3 client does not pickle, and S3 is reachable from
every worker), and hands back the result and the files a local run leaves in the work
directory (``OUTPUTS``), which the driver writes under its own ``--work``. ``run_shipped`` is
that task body as a plain function (tested without Ray); ``run_on_ray`` is the thin Ray part.

Lives in ``app`` beside ``app.retrain`` because the driver half is ``routeiq retrain``'s;
ray is imported only inside ``run_on_ray`` and the task, so ``import app`` never loads it.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from app.retrain import Exported, RetrainPlan, RetrainResult

OUTPUTS = ("gate/gate.json", "gate/gate.png", "decisions/feedback-train.jsonl", "decisions/gate-log.jsonl")
"""What the task sends back, relative to the work directory: the gate report and the split."""

_RAY_OPTIONS = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "memory"}
"""Resource names Ray takes as their own ``.options`` keyword rather than in ``resources``."""


class RayRunError(Exception):
    """The Ray side failed (no cluster fits the request, a worker died): one line for the CLI."""


@dataclass(frozen=True)
class RegistrySpec:
    """How to reach the registry, rebuilt in the task (a boto3 client does not pickle)."""

    url: str
    endpoint_url: str | None = None
    region: str | None = None

    def build(self) -> Any:
        from router_models.registry.store import open_registry

        return open_registry(self.url, self.endpoint_url, self.region)


@dataclass(frozen=True)
class Shipment:
    """A plan and an export with every file they name carried as bytes (``pack``)."""

    plan: RetrainPlan
    exported: Exported
    files: dict[str, bytes]
    """Name in the task's input directory -> content; the plan and export name these."""


@dataclass(frozen=True)
class Shipped:
    """What the task hands back: the result and the ``OUTPUTS`` it wrote (relative path -> bytes)."""

    result: RetrainResult
    files: dict[str, bytes]


def parse_resources(text: str) -> dict[str, float]:
    """``--ray-resources``: a JSON object of resource name -> non-negative amount."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--ray-resources is not JSON ({exc.msg} at character {exc.pos}): {text!r}") from None
    if not isinstance(parsed, dict) or not parsed:
        raise ValueError(f'--ray-resources must be a non-empty JSON object such as {{"CPU": 2}}, not {text!r}')
    for name, amount in parsed.items():
        if not name or isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise ValueError(f"--ray-resources: {name!r} must be a resource name with a non-negative number, "
                             f"not {amount!r}")
    return {name: float(amount) for name, amount in parsed.items()}


def ray_options(resources: dict[str, float]) -> dict[str, Any]:
    """The task's ``.options(...)``: CPU, GPU and memory as Ray's keywords, the rest as custom resources."""
    options: dict[str, Any] = {"num_cpus": 0}  # a task asks for 1 CPU unless told: only what was asked
    custom = {}
    for name, amount in resources.items():
        if name in _RAY_OPTIONS:
            options[_RAY_OPTIONS[name]] = amount
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    return options


def fits_a_node(request: dict[str, float], nodes: list[dict[str, float]]) -> bool:
    """Whether one node's total resources cover the whole request (a task runs on one node)."""
    return any(all(node.get(name, 0.0) >= amount for name, amount in request.items()) for node in nodes)


def wait_for_fit(request: dict[str, float], nodes: Callable[[], list[dict[str, float]]], wait_s: float,
                 poll_s: float = 2.0) -> list[dict[str, float]]:
    """Poll the cluster's live nodes until one covers the request or ``wait_s`` passes; raise then.

    Why wait: a RayJob submits once its head is up, and a training worker may join seconds
    to minutes later (a pod still pulling the train image, or an autoscaled group at 0)."""
    deadline = time.monotonic() + wait_s
    while True:
        seen = nodes()
        if fits_a_node(request, seen):
            return seen
        if time.monotonic() >= deadline:
            raise RayRunError(f"no node of the Ray cluster offers {request} after {wait_s:g} s (its nodes: {seen})")
        time.sleep(poll_s)


def pack(plan: RetrainPlan, exported: Exported) -> Shipment:
    """Read every input of the task; the same file named twice travels once."""
    names: dict[Path, str] = {}
    files: dict[str, bytes] = {}

    def ship(path: Path, name: str) -> Path:
        key = path.resolve()
        if key not in names:
            names[key] = name
            files[name] = path.read_bytes()
        return Path(names[key])

    shipped_plan = replace(plan, base_data=ship(plan.base_data, "base.jsonl"),
                           eval_data=ship(plan.eval_data, "eval.jsonl"),
                           candidates=ship(plan.candidates, "candidates.json"))
    shipped_export = replace(exported, log=ship(exported.log, "decisions/log.jsonl"),
                             feedback=ship(exported.feedback, "decisions/feedback.jsonl"))
    return Shipment(shipped_plan, shipped_export, files)


def unpack(shipment: Shipment, root: Path) -> tuple[RetrainPlan, Exported]:
    """Write the shipped files under ``root`` (the export where a local run keeps it: work/decisions)."""
    work, inputs = root / "work", root / "inputs"

    def place(name: Path) -> Path:
        dest = work / name if name.parts[0] == "decisions" else inputs / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(shipment.files[str(name)])
        return dest

    p, e = shipment.plan, shipment.exported
    plan = replace(p, work=work, base_data=place(p.base_data), eval_data=place(p.eval_data),
                   candidates=place(p.candidates))
    return plan, replace(e, log=place(e.log), feedback=place(e.feedback))


def worker_identity() -> dict[str, Any]:
    """Which process trained: recorded in result.json (the Ray node id is added by the task)."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def run_shipped(shipment: Shipment, registry: RegistrySpec, root: Path) -> Shipped:
    """The task body: unpack, run the loop's CPU-bound half, collect ``OUTPUTS``."""
    from app.retrain import retrain

    plan, exported = unpack(shipment, root)
    result = retrain(plan, exported, registry.build())
    result.trained_on = worker_identity()
    files = {rel: (plan.work / rel).read_bytes() for rel in OUTPUTS if (plan.work / rel).is_file()}
    return Shipped(result, files)


def receive(shipped: Shipped, work: Path) -> RetrainResult:
    """Write the task's files under the driver's work directory, where a local run leaves them."""
    for rel, content in shipped.files.items():
        dest = work / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
    return shipped.result


def write_result(work: Path, result: RetrainResult) -> Path:
    """``result.json`` beside the gate report: the verdict, the counts and who trained."""
    path = work / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return path


def _task(shipment: Shipment, registry: RegistrySpec) -> Shipped:
    """Runs in a Ray worker: a private temporary directory, removed once the outputs are read."""
    import ray

    with tempfile.TemporaryDirectory(prefix="routeiq-retrain-") as tmp:
        shipped = run_shipped(shipment, registry, Path(tmp))
    shipped.result.trained_on["node_id"] = ray.get_runtime_context().get_node_id()
    return shipped


def run_on_ray(plan: RetrainPlan, exported: Exported, registry: RegistrySpec, resources: dict[str, float],
               address: str, wait_s: float = 300.0) -> RetrainResult:
    """Submit the task (joining the process's Ray if it has one, else ``address``) and wait for it."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=True, configure_logging=False)
    try:
        wait_for_fit(resources, lambda: [n["Resources"] for n in ray.nodes() if n.get("Alive")],  # type: ignore[no-untyped-call]
                     wait_s)
        remote = ray.remote(_task).options(**ray_options(resources), max_retries=0)
        try:
            shipped: Shipped = ray.get(remote.remote(pack(plan, exported), registry))
        except RayTaskError as err:
            cause = err.cause
            raise (cause if isinstance(cause, Exception) else RayRunError(str(err).splitlines()[0])) from None
        except RayError as err:
            raise RayRunError(f"the Ray task failed: {str(err).splitlines()[0]}") from None
        return receive(shipped, plan.work)
    finally:
        if started:
            ray.shutdown()
