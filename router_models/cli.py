"""Learned-router commands: ``train``, ``eval``, ``compare``, ``gate`` and ``sign``.

The ``routeiq`` console script is ``app.cli``, which mounts these commands next to the
gateway's own (``decisions export``); this module must not import ``app``, ray or
fastapi (``tests/unit/router_models/test_boundaries.py``). Imports are lazy (inside
commands) so ``routeiq --help`` does not load torch or llmrouter. Progress bars go to
stderr; ``eval --json`` prints one JSON object on stdout. ``python -m router_models.cli``
runs these commands alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from router_models.evaluation.ope_evidence import (
    OPE_EVIDENCE_HELP,
    SPLIT_EVIDENCE_HELP,
    OpeEvidence,
    SplitEvidence,
)

app = typer.Typer(
    help="RouteIQ learned routing: train and evaluate routers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_TRAIN = Path("router_models/data/routing/train.jsonl")
_CANDIDATES = Path("router_models/data/routing/llm_candidates.json")


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _missing_training_libraries() -> list[str]:
    """What the serving install lacks for training (it has no torch): checked before a minute of embedding."""
    from importlib.util import find_spec

    return [name for name, module in (("torch", "torch"), ("llmrouter-lib", "llmrouter"), ("scikit-learn", "sklearn"))
            if find_spec(module) is None]


@app.command()
def train(
    router: Annotated[str | None, typer.Option(
        help="finetuned, ensemble, mlp, knn, mf (default: finetuned; ensemble with --embedder static).")] = None,
    data: Annotated[Path, typer.Option(help="Training split (JSONL: query, scores).")] = _TRAIN,
    feedback: Annotated[list[Path] | None, typer.Option(
        help="Decision-log training export (`routeiq decisions export --training`): partial labels, "
             "merged with --data; repeat for several.")] = None,
    candidates: Annotated[Path, typer.Option(help="Model prices (llm_candidates.json).")] = _CANDIDATES,
    out: Annotated[Path, typer.Option(help="Artifact directory to write.")] = Path("router_models/pretrained/default"),
    eval_data: Annotated[Path | None, typer.Option(help="Held-out split to record in the manifest.")] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds for the default lambda.")] = 5,
    max_seq_length: Annotated[int, typer.Option(help="Embedder window (tokens).")] = 128,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 quantisation of the embedder.")] = True,
    embedder: Annotated[str, typer.Option(
        help="minilm (the encoder per query) or static (token vectors distilled from it: ~30x less CPU per "
             "query, lower routing quality; docs/routing.md).")] = "minilm",
    seed: Annotated[int, typer.Option()] = 0,
    sign: Annotated[bool, typer.Option(help="Sign with $ROUTEIQ_ROUTER_SIGNING_KEY (automatic if set).")] = False,
) -> None:
    """Train a router and write a verified artifact directory."""
    _offline()
    from rich.console import Console

    from router_models.artifacts import SIGNING_KEY_ENV
    from router_models.embedding import EmbedderConfig
    from router_models.static_embedding import static_config
    from router_models.training.pipeline import TrainConfig
    from router_models.training.pipeline import train as run_train
    from router_models.training.progress import rich_progress

    if sign and not os.environ.get(SIGNING_KEY_ENV):
        raise typer.BadParameter(f"--sign needs {SIGNING_KEY_ENV} in the environment")
    if missing := _missing_training_libraries():
        needs = ", ".join(missing)
        typer.echo(f"error: training needs {needs} (the `train` extra): run `make install-train`", err=True)
        raise typer.Exit(2)
    if embedder not in ("minilm", "static"):
        raise typer.BadParameter(f"--embedder must be minilm or static, not {embedder!r}")
    static = embedder == "static"
    cfg = TrainConfig(
        router_type=router or ("ensemble" if static else "finetuned"),
        data=data,
        candidates=candidates,
        out=out,
        folds=folds,
        seed=seed,
        embedder=static_config(max_seq_length) if static else EmbedderConfig(max_seq_length=max_seq_length,
                                                                              quantize=quantize),
        eval_data=eval_data,
        feedback=tuple(feedback or ()),
    )
    try:
        with rich_progress() as progress:
            manifest = run_train(cfg, progress)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    cv = manifest["eval"]["cross_validation"]
    console = Console(stderr=True)
    lam = manifest["default_lambda"]
    console.print(f"[bold]wrote[/] {out}  router={manifest['router_type']}  default_lambda={lam:g}")
    if "q_at_c_best_ratio" in cv:
        c = cv["c_at_q_best_pct"]
        reached = "not reached" if c is None else f"{c:.1f} % of C_best"
        console.print(f"cross-validation: Q@C_best {cv['q_at_c_best_ratio']:.3f} x Q_best, C@Q_best {reached}")


@app.command("eval")
def eval_cmd(
    router_dir: Annotated[Path, typer.Option(help="Artifact directory.")],
    data: Annotated[Path, typer.Option(help="Split to evaluate (JSONL).")],
    train_data: Annotated[Path, typer.Option(help="Training split (picks the best single model).")] = _TRAIN,
    candidates: Annotated[Path, typer.Option(help="Model prices.")] = _CANDIDATES,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the curve as a PNG.")] = None,
    allow_pickle: Annotated[bool, typer.Option(help="Accept pickle artifacts (they can run code).")] = False,
) -> None:
    """Evaluate an artifact with the README protocol (lambda sweep, Q@C_best, C@Q_best)."""
    _offline()
    from router_models.artifacts import ArtifactError
    from router_models.evaluation.report import plot_report, print_report
    from router_models.evaluation.run import evaluate_artifact
    from router_models.training.progress import rich_progress

    try:
        with rich_progress() as progress:
            report = evaluate_artifact(
                router_dir,
                data,
                train_path=train_data,
                candidates_path=candidates,
                allow_pickle=allow_pickle,
                progress=progress,
            )
    except ArtifactError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if plot is not None:
        plot_report({str(report.extra["router_type"]): report}, plot)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        print_report(report)


@app.command()
def compare(
    router_dir: Annotated[list[Path], typer.Option(help="Artifact directories (repeat the option).")],
    data: Annotated[Path, typer.Option(help="Split to evaluate (JSONL).")],
    plot: Annotated[Path | None, typer.Option(help="Write all curves in one PNG.")] = None,
    train_data: Annotated[Path, typer.Option(help="Training split (picks the best single model).")] = _TRAIN,
) -> None:
    """Evaluate several artifacts on one split; print a markdown table (for docs/routing.md)."""
    _offline()
    from router_models.evaluation.report import markdown_table, plot_report
    from router_models.evaluation.run import evaluate_artifact
    from router_models.training.progress import rich_progress

    reports = {}
    with rich_progress() as progress:
        for d in router_dir:
            rep = evaluate_artifact(d, data, train_path=train_data, progress=progress)
            reports[f"{rep.extra['router_type']} ({d.name})"] = rep
    if plot is not None:
        plot_report(reports, plot)
    typer.echo(markdown_table(reports))


@app.command("gate")
def gate_cmd(
    current: Annotated[Path, typer.Option(help="Artifact directory of the router serving now.")],
    candidate: Annotated[Path, typer.Option(help="Artifact directory of the router to judge.")],
    log: Annotated[Path, typer.Option(help="Decision log rows (`routeiq decisions export`, JSONL).")],
    eval_data: Annotated[Path, typer.Option(help="Held-out labelled split (JSONL: query, scores).")],
    train_data: Annotated[Path, typer.Option(help="Training split (picks the best single model).")] = _TRAIN,
    candidates: Annotated[Path, typer.Option(help="Model prices (llm_candidates.json).")] = _CANDIDATES,
    out: Annotated[Path, typer.Option(help="Directory for gate.json and gate.png.")] = Path("gate-report"),
    margin_ope: Annotated[float, typer.Option(help="Off-policy value the candidate may lose.")] = 0.01,
    margin_q: Annotated[float, typer.Option(help="Q@C_best ratio the candidate may lose.")] = 0.01,
    margin_c: Annotated[float, typer.Option(help="C@Q_best percentage points it may add.")] = 5.0,
    ope_evidence: Annotated[OpeEvidence, typer.Option(help=OPE_EVIDENCE_HELP)] = OpeEvidence.INTERVAL,
    split_evidence: Annotated[SplitEvidence, typer.Option(help=SPLIT_EVIDENCE_HELP)] = SplitEvidence.POINT,
    allow_pickle: Annotated[bool, typer.Option(help="Accept pickle artifacts (they can run code).")] = False,
) -> None:
    """Compare a candidate router with the current one (off-policy on the log, protocol on a
    labelled split); exit 0 when it may be promoted, 1 when refused (docs/routing.md)."""
    _offline()
    from router_models.artifacts import ArtifactError
    from router_models.data import load_prices, load_routing_data
    from router_models.evaluation.gate import Margins, read_log, run_gate
    from router_models.evaluation.report import plot_report
    from router_models.inference.learned import LearnedRouter

    try:
        routers = [LearnedRouter.load(d, allow_pickle=allow_pickle) for d in (current, candidate)]
        split = load_routing_data(eval_data, candidates)
        train_mean = load_routing_data(train_data, candidates, models=split.models).scores.mean(0)
        report, reports = run_gate(routers[0], routers[1], read_log(log), split, train_mean, load_prices(candidates),
                                   Margins(margin_ope, margin_q, margin_c, ope_evidence.value,
                                           split_evidence.value))
    except (ArtifactError, OSError, ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_report(reports, out / "gate.png", title=f"gate: {candidate.name} vs {current.name}")
    for warning in report["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    verdict = "passed" if report["passed"] else "refused: " + "; ".join(report["refused_because"])
    typer.echo(f"gate {verdict} ({out / 'gate.json'})")
    raise typer.Exit(0 if report["passed"] else 1)


@app.command("sign")
def sign_cmd(
    router_dir: Annotated[Path, typer.Argument(help="Artifact directory (manifest.json and its files).")],
    key_file: Annotated[
        Path | None,
        typer.Option(help="File whose exact bytes are the key (the file the Secret is made from). "
                          "Default: $ROUTEIQ_ROUTER_SIGNING_KEY."),
    ] = None,
    allow_pickle: Annotated[bool, typer.Option(help="Also sign pickle artifacts (they can run code).")] = False,
) -> None:
    """Sign an existing artifact (e.g. the shipped default) for a scorer that requires signatures.

    Checks every file against the manifest's sha256 first; then writes manifest.sig.
    """
    from router_models.artifacts import ArtifactError, sign_artifact

    try:
        key = key_file.read_bytes() if key_file is not None else None
        sig = sign_artifact(router_dir, signing_key=key, allow_pickle=allow_pickle)
    except (ArtifactError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"signed {router_dir} ({sig.name})", err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
