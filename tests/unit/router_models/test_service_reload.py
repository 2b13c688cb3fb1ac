"""RoutingService: learned routers route, and a refused artifact never replaces a loaded one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devtools.configs import ARTIFACT
from router_models.artifacts import ArtifactError
from router_models.inference.service import RouterSpec, RoutingService
from router_models.inference.types import Candidate, RouteQuery

CANDS = (Candidate("gemma-2-9b-it", 0.1), Candidate("llama-3.1-nemotron-51b-instruct", 0.9))


@pytest.fixture(scope="module")
def service() -> RoutingService:
    return RoutingService([RouterSpec("auto", "learned", str(ARTIFACT)), RouterSpec("cheap", "cost-first")])


async def test_routes_learned_and_cost_first_in_one_batch(service: RoutingService) -> None:
    decisions = await service.route_batch(
        [
            RouteQuery("auto", "What is 17 * 23?", CANDS, lam=0.0),
            RouteQuery("auto", "What is 17 * 23?", CANDS, lam=10.0),
            RouteQuery("cheap", "anything", CANDS),
        ]
    )
    assert decisions[0].strategy.startswith("learned") and set(decisions[0].scores) == {c.name for c in CANDS}
    assert decisions[1].model == "gemma-2-9b-it"  # a high λ buys the cheapest
    assert decisions[2].strategy == "cost-first" and decisions[2].model == "gemma-2-9b-it"


def test_refused_artifact_keeps_the_loaded_router(service: RoutingService, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(ARTIFACT, bad)
    weights = bad / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit: the manifest's sha256 no longer matches
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError):
        service.reload("auto", str(bad))
    assert service.describe()["auto"]["artifact"] == str(ARTIFACT)
    good = tmp_path / "good"
    shutil.copytree(ARTIFACT, good)
    service.reload("auto", str(good))
    assert service.describe()["auto"]["artifact"] == str(good)
