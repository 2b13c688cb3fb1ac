"""``routeiq label``: the command around ``app.label`` (errors are one line, exit 2).

The judge model and rubric are flags, not gateway config: labelling is an offline job
run by whoever holds a key and a budget, and the judge only has to be a model the
gateway serves. ``openai`` and ``tqdm`` are imported inside the command so that
``routeiq --help`` stays light.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

if TYPE_CHECKING:
    from app.label.labeller import LabelPlan
    from app.label.sampling import LoggedPrompt

app = typer.Typer(pretty_exceptions_show_locals=False)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def label(
    export: Annotated[Path, typer.Option(help="Decision-log export (JSONL), as `routeiq decisions export` writes.")],
    gateway: Annotated[str, typer.Option(help="Gateway base URL, e.g. http://127.0.0.1:8000 (/v1 is added).")],
    judge: Annotated[str, typer.Option(help="Judge model: a model name the gateway serves.")],
    rubric: Annotated[Path, typer.Option(help="Text file: the rubric the judge scores answers against.")],
    budget: Annotated[float, typer.Option(help="Most dollars to spend (replays and judging together).")],
    api_key: Annotated[str, typer.Option(envvar="ROUTEIQ_API_KEY", help="Gateway key (or ROUTEIQ_API_KEY).")],
    sample: Annotated[int | None, typer.Option(help="Prompts to draw from the export (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    candidates: Annotated[str | None, typer.Option(help="m1,m2,...: models to label (default: each row's).")] = None,
    out: Annotated[Path | None, typer.Option(help="JSONL file to write; default stdout.")] = None,
    concurrency: Annotated[int, typer.Option(help="Prompts labelled at once.")] = 4,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap of a replay.")] = 512,
    prices: Annotated[Path | None, typer.Option(
        help="llm_candidates.json-style prices ($/1M tokens), for a server that sends no x-routeiq-cost.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per call.")] = 120.0,
) -> None:
    """Replay logged prompts to other candidates through the gateway, score the answers with a
    judge model, and write {"query", "scores"} rows for `routeiq train` (docs/routing.md)."""
    from app.label.labeller import LabelPlan
    from app.label.sampling import LabelError, read_export
    from app.label.sampling import sample as draw

    if budget <= 0 or concurrency < 1 or max_tokens < 1 or (sample is not None and sample < 1):
        raise _fail("--budget must be > 0, and --concurrency, --max-tokens and --sample >= 1")
    models = tuple(m.strip() for m in candidates.split(",") if m.strip()) if candidates else None
    try:
        text = rubric.read_text(encoding="utf-8")
        if not text.strip():
            raise LabelError(f"{rubric} is empty: the judge needs a rubric")
        plan = LabelPlan(judge=judge, rubric=text, models=models, max_tokens=max_tokens, concurrency=concurrency)
        prompts = draw(read_export(export), sample, seed)
        if not prompts:
            raise LabelError(f"{export}: no answered request with a stored query to replay")
        price_map = _prices(prices) if prices else None
        if out is None:
            summary = _run(prompts, plan, gateway, api_key, budget, timeout, price_map, sys.stdout)
        else:
            with out.open("w", encoding="utf-8") as fh:
                summary = _run(prompts, plan, gateway, api_key, budget, timeout, price_map, fh)
    except LabelError as err:
        raise _fail(str(err)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(str(err)) from None
    typer.echo(summary + (f" (rows in {out})" if out else ""), err=True)


def _prices(path: Path) -> dict[str, tuple[float, float]]:
    """Model -> ($ per prompt token, $ per completion token) from a candidates file."""
    import json

    from app.label.sampling import LabelError

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {m: (float(v["input_price"]) / 1e6, float(v["output_price"]) / 1e6) for m, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise LabelError(f"{path}: not a prices file ({{model: {{input_price, output_price}}}}): {err}") from None


def _run(prompts: list[LoggedPrompt], plan: LabelPlan, gateway: str, api_key: str, cap: float, timeout: float,
         prices: dict[str, tuple[float, float]] | None, sink: TextIO) -> str:
    import asyncio

    import openai
    import orjson
    from tqdm import tqdm

    from app.label.budget import Budget
    from app.label.labeller import Labeller

    def write(row: dict[str, object]) -> None:
        sink.write(orjson.dumps(row).decode() + "\n")
        sink.flush()

    async def go() -> str:
        base = gateway.rstrip("/")
        client = openai.AsyncOpenAI(base_url=base if base.endswith("/v1") else f"{base}/v1", api_key=api_key,
                                    timeout=timeout, max_retries=2)
        labeller = Labeller(client, plan, Budget(cap), prices)
        with tqdm(total=len(prompts), desc="label", unit="prompt", file=sys.stderr) as bar:
            try:
                await labeller.label(prompts, write, lambda: bar.update(1))
            finally:
                await client.close()
        return labeller.tally.summary(labeller.budget)

    return asyncio.run(go())
