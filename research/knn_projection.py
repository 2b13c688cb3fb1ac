"""Does a KNN on fewer dimensions route as well? Cross-validated, from train alone (issue #21).

A static router's decision is mostly its KNN bank (5,008 x 384 float32, 7.7 MB): with cold
caches that product costs ~0.8 ms of a ~1.5 ms decision (bench/RESULTS-auto.md). A bank of
keys projected onto their top principal components is d/384 of that. This script measures
what the projection does to routing quality, with the pipeline's folds and metrics:

``python -m research.knn_projection [--router-dir .routeiq/routers/static] [--dims 384,128,96,64]``

It runs the pipeline's own cross-validation (``training.pipeline.cross_validate``) of a KNN
with ``dims``: each fold's training fits the projection (mean and top-d components) on that
fold's rows only, and held-out queries are projected, centred and L2-normalised as serving
does. ``384`` is the KNN unprojected. Writes
``research/RESULTS-knn-projection.md``. Test data is never read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import track

from bench.runs import machine
from router_models.data import DEFAULT_TRAIN, RoutingData, load_routing_data
from router_models.inference.learned import LearnedRouter
from router_models.training.pipeline import TrainConfig, cross_validate
from router_models.training.progress import NullProgress

HERE = Path(__file__).parent
FULL = 384
"""The embedding's width: ``--dims 384`` is the KNN as trained, unprojected."""


def cv(data: RoutingData, x: np.ndarray, dims: int) -> dict[str, float | None]:
    """The pipeline's own cross-validation of a KNN with ``dims`` (``training.knn.project_keys``
    fits the projection inside each fold's training, on that fold's rows only)."""
    cfg = TrainConfig(router_type="knn", data=DEFAULT_TRAIN, out=Path("unused"), hparam={"dims": dims})
    r = cross_validate(cfg, data, x, NullProgress())
    return {"q_ratio": r["q_at_c_best_ratio"], "c_pct": r["c_at_q_best_pct"]}


def main(router_dir: Annotated[Path, typer.Option(help="A static-embedder router (its embedder is used).")] = Path(
             ".routeiq/routers/static"),
         dims: Annotated[str, typer.Option(help="Comma-separated dimensions; 384 is the unprojected KNN.")] = (
             "384,128,96,64"),
         out: Annotated[Path, typer.Option()] = HERE / "RESULTS-knn-projection.md") -> None:
    data = load_routing_data(DEFAULT_TRAIN)
    embedder = LearnedRouter.load(router_dir).embedder
    assert embedder is not None
    x = embedder.embed(data.queries).astype(np.float32)
    rows = []
    for d in track([int(v) for v in dims.split(",")], description="cross-validating"):
        r = cv(data, x, d)
        pct = "not reached" if r["c_pct"] is None else f"{r['c_pct']:.1f} %"
        rows.append(f"| {d} | {len(data) * min(d, FULL) * 4 / 1e6:.1f} MB | {r['q_ratio']:.4f} | {pct} |")
    table = "\n".join(rows)
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    out.write_text(f"""# KNN on projected keys: routing quality by dimension ({when})

`python -m research.knn_projection --router-dir {router_dir} --dims {dims}`; {machine()}.
KNN (the pipeline's defaults) on the static embedder of `{router_dir}`, 5-fold CV on
`train.jsonl` (the pipeline's folds and averaging); the projection is fitted per fold on its
training rows. See the module docstring.

| dimensions | bank (float32) | CV Q@C_best / Q_best | CV C@Q_best % of C_best |
| ---: | ---: | ---: | ---: |
{table}
""", encoding="utf-8")
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    typer.run(main)
