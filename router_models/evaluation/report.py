"""Human output of an evaluation: a rich table of the curve and a PNG plot."""

from __future__ import annotations

from pathlib import Path

from router_models.evaluation.protocol import EvalReport


def print_report(report: EvalReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Quality-cost curve ({report.n_queries} queries)")
    for col in ("lambda", "quality", "cost ($/1M tok)", "cost % of best single"):
        table.add_column(col, justify="right")
    default_lam = report.extra.get("default_lambda")
    for p in _thin(report):
        mark = " (default)" if default_lam is not None and abs(p.lam - float(default_lam)) < 1e-12 else ""
        table.add_row(f"{p.lam:g}{mark}", f"{p.quality:.4f}", f"{p.cost:.4f}", f"{100 * p.cost / report.c_best:.1f}")
    console.print(table)
    ref = Table(title="Reference points and metrics")
    ref.add_column("what")
    ref.add_column("value", justify="right")
    ref.add_row(f"best single ({report.best_model}, chosen on train)", f"Q {report.q_best:.4f} at {report.c_best:g}")
    ref.add_row("random", f"Q {report.random_quality:.4f} at {report.random_cost:.3f}")
    ref.add_row("oracle", f"Q {report.oracle:.4f}")
    ref.add_row("Q@C_best", f"{report.q_at_c_best:.4f} ({report.q_at_c_best / report.q_best:.3f} x Q_best)")
    c = report.c_at_q_best_pct
    ref.add_row("C@Q_best", "not reached" if c is None else f"{c:.1f} % of C_best (lambda {report.lambda_at_q_best:g})")
    if default_lam is not None:
        q, cost = report.extra["quality_at_default"], report.extra["cost_at_default"]
        ref.add_row(f"default lambda {default_lam:g}", f"Q {q:.4f} at {cost:.4f}")
    console.print(ref)


def _thin(report: EvalReport) -> list:
    """Drop consecutive points with the same (quality, cost): the table stays readable."""
    out = []
    for p in report.curve:
        if not out or (round(p.quality, 6), round(p.cost, 6)) != (round(out[-1].quality, 6), round(out[-1].cost, 6)):
            out.append(p)
    return out


def plot_report(reports: dict[str, EvalReport], path: str | Path, title: str = "") -> Path:
    """One curve per router, plus best single, random and oracle, on shared axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = next(iter(reports.values()))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, rep in reports.items():
        pts = sorted(rep.curve, key=lambda p: p.cost)
        ax.plot([p.cost for p in pts], [p.quality for p in pts], marker=".", ms=3, lw=1.2, label=name)
        lam = rep.extra.get("default_lambda")
        if lam is not None:
            ax.scatter([rep.extra["cost_at_default"]], [rep.extra["quality_at_default"]], marker="D", s=28, zorder=5)
    best_label = f"best single ({ref.best_model})"
    ax.scatter([ref.c_best], [ref.q_best], marker="*", s=160, c="black", zorder=6, label=best_label)
    ax.scatter([ref.random_cost], [ref.random_quality], marker="x", s=70, c="grey", zorder=6, label="random")
    ax.axhline(ref.oracle, ls="--", c="green", lw=1, label=f"oracle {ref.oracle:.3f}")
    ax.axhline(ref.q_best, ls=":", c="black", lw=0.8)
    ax.axvline(ref.c_best, ls=":", c="black", lw=0.8)
    ax.set_xlabel("mean price of picked model ($ per 1M tokens, (in+out)/2)")
    ax.set_ylabel("mean quality (score of picked model)")
    ax.set_title(title or f"Quality-cost curves ({ref.n_queries} queries; diamonds: default lambda)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def markdown_table(reports: dict[str, EvalReport]) -> str:
    """One row per router: the protocol's metrics plus the default-lambda operating point."""
    head = (
        "| router | Q@C_best | x Q_best | C@Q_best (% of C_best) | default lambda | quality / cost at default "
        "| Q_best / C_best | oracle | random |"
    )
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in reports.items():
        c = "not reached" if r.c_at_q_best_pct is None else f"{r.c_at_q_best_pct:.1f}"
        lam = r.extra.get("default_lambda")
        lines.append(
            f"| {name} | {r.q_at_c_best:.3f} | {r.q_at_c_best / r.q_best:.3f} | {c} | {lam:g} "
            f"| {r.extra['quality_at_default']:.3f} / {r.extra['cost_at_default']:.3f} "
            f"| {r.q_best:.3f} / {r.c_best:g} | {r.oracle:.3f} | {r.random_quality:.3f} |"
        )
    return "\n".join(lines)
