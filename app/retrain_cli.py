"""``routeiq retrain``: the command around ``app.retrain`` (errors are one line, exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.access.cli_options import DEFAULT_CONFIG, ConfigOption, DatabaseUrlOption, database_engine

app = typer.Typer(pretty_exceptions_show_locals=False)
_DATA = Path("router_models/data/routing")


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
    gate_holdout: Annotated[float, typer.Option(  # default = app.retrain.GATE_HOLDOUT (a test checks)
        min=0.0, max=0.9, help="Share of logged queries the gate reads and training never sees.")] = 0.2,
    endpoint_url: Annotated[str | None, typer.Option(help="S3-compatible endpoint (MinIO, ...).")] = None,
    region: Annotated[str | None, typer.Option(help="S3 region.")] = None,
) -> None:
    """Export the decision log, train on its feedback, gate against the served version, publish,
    and promote when the gate passes (docs/routing.md). Exit 0 promoted or passed, 1 refused."""
    import asyncio

    from app.access.decision_store import DecisionStore
    from app.access.store import StoreUnavailableError
    from app.config import ConfigError
    from app.retrain import Exported, RetrainPlan, export_decisions
    from app.retrain import retrain as run
    from router_models.artifacts import ArtifactError
    from router_models.registry.errors import RegistryError

    plan = RetrainPlan(router=router, work=work, base_data=base_data, eval_data=eval_data, candidates=candidates,
                       router_type=router_type, folds=folds, promote=promote, gate_holdout=gate_holdout,
                       margins={"ope": margin_ope, "q_ratio": margin_q, "c_pct": margin_c})

    async def export() -> Exported:
        engine = database_engine(config, database_url)
        try:
            return await export_decisions(DecisionStore(engine, timeout_s=30), work / "decisions")
        finally:
            await engine.dispose()

    try:
        exported = asyncio.run(export())
        from router_models.registry.location import parse_registry_url
        from router_models.registry.s3 import build_s3_client
        from router_models.registry.store import RouterRegistry

        registry = RouterRegistry(build_s3_client(endpoint_url, region), parse_registry_url(registry_url))
        result = run(plan, exported, registry)
    except (ArtifactError, RegistryError, ConfigError, StoreUnavailableError, OSError, ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"retrain {router}: {result.summary()} (report: {work / 'gate' / 'gate.json'})")
    raise typer.Exit(0 if result.passed else 1)
