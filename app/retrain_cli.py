"""``routeiq retrain``: the command around ``app.retrain`` (errors are one line, exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.access.cli_options import DEFAULT_CONFIG, ConfigOption, DatabaseUrlOption, database_engine
from router_models.evaluation.ope_evidence import (
    OPE_EVIDENCE_HELP,
    SPLIT_EVIDENCE_HELP,
    OpeEvidence,
    SplitEvidence,
)

if TYPE_CHECKING:
    from app.retrain import Exported, RetrainPlan, RetrainResult
    from app.retrain_ray import RegistrySpec

app = typer.Typer(pretty_exceptions_show_locals=False)
_DATA = Path("router_models/data/routing")
RAY_RESOURCES = '{"CPU": 1}'


@app.command()
def retrain(
    registry_url: Annotated[str, typer.Option("--registry", help="Router registry, s3://bucket/prefix.")],
    eval_data: Annotated[Path, typer.Option(help="Held-out labelled split for the gate (JSONL: query, scores).")],
    router: Annotated[str, typer.Option(help="The gateway router (registry pointer) to improve.")] = "auto",
    config: ConfigOption = DEFAULT_CONFIG,
    database_url: DatabaseUrlOption = None,
    base_data: Annotated[Path, typer.Option(help="Full-label base set the feedback is merged with.")] = (
        _DATA / "train.jsonl"),
    candidates: Annotated[Path, typer.Option(help="Prices of every model scored.")] = _DATA / "llm_candidates.json",
    router_type: Annotated[str, typer.Option(help="finetuned, ensemble, mlp or knn.")] = "finetuned",
    folds: Annotated[int, typer.Option(help="Cross-validation folds (1: none).")] = 5,
    work: Annotated[Path, typer.Option(help="Directory for the export, artifacts and gate report.")] = Path(
        ".routeiq/retrain"),
    promote: Annotated[bool, typer.Option(help="Promote the new version when the gate passes.")] = True,
    margin_ope: Annotated[float, typer.Option(help="Off-policy value the candidate may lose.")] = 0.01,
    margin_q: Annotated[float, typer.Option(help="Q@C_best ratio the candidate may lose.")] = 0.01,
    margin_c: Annotated[float, typer.Option(help="C@Q_best percentage points it may add.")] = 5.0,
    ope_evidence: Annotated[OpeEvidence, typer.Option(help=OPE_EVIDENCE_HELP)] = OpeEvidence.INTERVAL,
    split_evidence: Annotated[SplitEvidence, typer.Option(help=SPLIT_EVIDENCE_HELP)] = SplitEvidence.POINT,
    gate_holdout: Annotated[float, typer.Option(  # default = app.retrain.GATE_HOLDOUT (a test checks)
        min=0.0, max=0.9, help="Share of logged queries the gate reads and training never sees.")] = 0.2,
    endpoint_url: Annotated[str | None, typer.Option(help="S3-compatible endpoint (MinIO, ...).")] = None,
    region: Annotated[str | None, typer.Option(help="S3 region.")] = None,
    ray: Annotated[bool, typer.Option("--ray", help=(
        "Train, gate and publish as one Ray task on a cluster (the export stays here); "
        "joins the Ray this process already runs, else --ray-address."))] = False,
    ray_address: Annotated[str | None, typer.Option(help=(
        "Ray cluster to join (implies --ray). Default: $RAY_ADDRESS, else auto."), show_default=False)] = None,
    ray_resources: Annotated[str | None, typer.Option(help=(
        f'Resources of the Ray task, JSON such as {{"CPU": 2, "routeiq-train": 1}}. Default: {RAY_RESOURCES}.'),
        show_default=False)] = None,
    ray_wait: Annotated[float, typer.Option(min=0.0, help=(
        "Seconds to wait for a node that offers --ray-resources (a worker still starting) before giving up."))] = 300.0,
) -> None:
    """Export the decision log, train on its feedback, gate against the served version, publish,
    and promote when the gate passes (docs/routing.md). Exit 0 promoted or passed, 1 refused.
    Writes the gate report (gate/gate.json, gate/gate.png) and result.json under --work."""
    from app.access.store import StoreUnavailableError
    from app.config import ConfigError
    from app.retrain import RetrainPlan
    from app.retrain_ray import RayRunError, RegistrySpec, write_result
    from router_models.artifacts import ArtifactError
    from router_models.registry.errors import RegistryError

    plan = RetrainPlan(router=router, work=work, base_data=base_data, eval_data=eval_data, candidates=candidates,
                       router_type=router_type, folds=folds, promote=promote, gate_holdout=gate_holdout,
                       margins={"ope": margin_ope, "q_ratio": margin_q, "c_pct": margin_c,
                                "ope_evidence": ope_evidence.value, "split_evidence": split_evidence.value})
    on_ray = ray or ray_address is not None
    try:
        if ray_resources is not None and not on_ray:
            raise ValueError("--ray-resources applies only with --ray")
        result = _loop(plan, RegistrySpec(registry_url, endpoint_url, region), lambda: _export(
            config, database_url, work / "decisions"), ray_address, ray_resources, on_ray=on_ray, ray_wait=ray_wait)
        write_result(work, result)
    except (ArtifactError, RegistryError, ConfigError, StoreUnavailableError, RayRunError, OSError, ValueError,
            KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"retrain {router}: {result.summary()} (report: {work / 'gate' / 'gate.json'})")
    raise typer.Exit(0 if result.passed else 1)


def _export(config: Path, database_url: str | None, dest: Path) -> Exported:
    """The decision log's export, in this process: it reads the database."""
    import asyncio

    from app.access.decision_store import DecisionStore
    from app.retrain import export_decisions

    async def export() -> Exported:
        engine = database_engine(config, database_url)
        try:
            return await export_decisions(DecisionStore(engine, timeout_s=30), dest)
        finally:
            await engine.dispose()

    return asyncio.run(export())


def _loop(plan: RetrainPlan, registry: RegistrySpec, export: Callable[[], Exported], ray_address: str | None,
          ray_resources: str | None, *, on_ray: bool, ray_wait: float = 300.0) -> RetrainResult:
    """Export here, then the rest here or as a Ray task (the resources checked first: a typo costs nothing)."""
    import os

    from app.retrain import retrain
    from app.retrain_ray import parse_resources, worker_identity

    resources = parse_resources(ray_resources or RAY_RESOURCES)
    exported = export()
    if on_ray:
        from app.retrain_ray import run_on_ray

        address = ray_address or os.environ.get("RAY_ADDRESS") or "auto"
        return run_on_ray(plan, exported, registry, resources, address, ray_wait)
    result = retrain(plan, exported, registry.build())
    result.trained_on = worker_identity()
    return result
