"""Exploration with logged propensities: the policy (``Explorer``) alone, then through the
app in-process with the official ``openai`` SDK, a mock upstream and the decision log
(SQLite), with a scorer that always picks the mid-priced model."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from app.access.decision_log import DecisionWriter
from app.config import ExplorationSettings, parse_config
from app.errors import InvalidRequestError
from app.gateway.exploration import Explorer, LocalExploreBudget, distribution, eligible, explore_header, utc_day
from app.main import create_app
from app.providers.base import ProviderCall, Upstream
from app.providers.mock import MockReply, MockTransport
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import CHEAP, MASTER_KEY, MID, PRICEY, gateway_config
from router_models.inference.types import Candidate, RouteDecision, RouteQuery

CANDS = (Candidate(CHEAP, 0.1), Candidate(MID, 0.5), Candidate(PRICEY, 5.0))
GREEDY = RouteDecision(model=MID, strategy="learned:fake", scores={CHEAP: 0.2, MID: 0.6, PRICEY: 0.55})


def explorer(seed: int = 0, budget: LocalExploreBudget | None = None, **settings: Any) -> Explorer:
    return Explorer({"auto": ExplorationSettings(**settings)}, budget or LocalExploreBudget(), random.Random(seed))


def test_the_policy_distribution_sums_to_one_and_covers_the_pool() -> None:
    for rate in (0.0, 0.1, 0.5, 1.0):
        for pool in (CANDS, CANDS[:1], CANDS[1:]):
            dist = distribution(rate, MID, pool)
            assert sum(dist.values()) == pytest.approx(1.0)
            assert set(dist) == {MID} | {c.name for c in pool}


async def test_logged_propensities_are_the_probabilities_draws_actually_follow() -> None:
    ex = explorer(seed=7, rate=0.3)
    served: Counter[str] = Counter()
    logged: dict[str, float] = {}
    n = 6000
    for _ in range(n):
        d = await ex.choose("auto", GREEDY, CANDS, key_id="k", opted_out=False)
        served[d.model] += 1
        assert d.propensity is not None
        logged.setdefault(d.model, d.propensity)
        assert logged[d.model] == d.propensity  # the same model always logs the same probability
        assert d.policy == pytest.approx({MID: 0.8, CHEAP: 0.1, PRICEY: 0.1})  # the whole distribution, every time
    assert logged == pytest.approx({MID: 0.7 + 0.1, CHEAP: 0.1, PRICEY: 0.1})
    for model, p in logged.items():
        assert served[model] / n == pytest.approx(p, abs=0.02)


async def test_without_exploration_every_decision_is_logged_as_sure() -> None:
    d = await explorer(rate=0.0).choose("auto", GREEDY, CANDS, key_id="k", opted_out=False)
    assert (d.model, d.propensity, d.explored, d.policy) == (MID, 1.0, False, {MID: 1.0})
    shuffle = RouteDecision(model=CHEAP, strategy="weighted-shuffle", scores={CHEAP: 0.25, MID: 0.75})
    drawn = await explorer(rate=0.0).choose("auto", shuffle, CANDS, key_id="k", opted_out=False)
    assert (drawn.propensity, drawn.policy) == (0.25, {CHEAP: 0.25, MID: 0.75})


async def test_opted_out_requests_and_router_fallbacks_are_never_explored() -> None:
    ex = explorer(rate=1.0)
    for _ in range(50):
        d = await ex.choose("auto", GREEDY, CANDS, key_id="k", opted_out=True)
        assert (d.model, d.propensity, d.explored) == (MID, 1.0, False)
    fallback = RouteDecision(model=MID, strategy="fallback", fallback=True)
    assert not (await ex.choose("auto", fallback, CANDS, key_id="k", opted_out=False)).explored


async def test_exploration_stays_inside_the_candidates_it_is_given_and_its_models() -> None:
    allowed = CANDS[:2]  # what the ingress narrowed: the key may not use PRICEY
    ex = explorer(rate=1.0)
    assert {(await ex.choose("auto", GREEDY, allowed, key_id="k", opted_out=False)).model
            for _ in range(100)} == {CHEAP, MID}
    only = explorer(rate=1.0, models=[PRICEY])
    assert {(await only.choose("auto", GREEDY, allowed, key_id="k", opted_out=False)).model
            for _ in range(50)} == {MID}  # nothing eligible: the greedy pick, sure
    assert eligible(ExplorationSettings(rate=1, models=(PRICEY,)), GREEDY, CANDS) == (CANDS[2],)


def test_max_utility_loss_keeps_close_scored_candidates_and_every_unscored_one() -> None:
    unscored = Candidate("their-own", 0.3)
    pool = eligible(ExplorationSettings(rate=1, max_utility_loss=0.1), GREEDY, (*CANDS, unscored))
    assert [c.name for c in pool] == [MID, PRICEY, "their-own"]  # CHEAP is 0.4 below the best


async def test_a_key_stops_exploring_at_its_daily_cost_cap() -> None:
    budget = LocalExploreBudget()
    ex = explorer(rate=1.0, budget=budget, max_cost_per_key_per_day=1.0, models=[CHEAP])
    d = await ex.choose("auto", GREEDY, CANDS, key_id="k", opted_out=False)
    assert d.explored and d.model == CHEAP
    ex.charge("k", d, 0.6)
    assert (await ex.choose("auto", GREEDY, CANDS, key_id="k", opted_out=False)).explored
    ex.charge("k", d, 0.6)  # 1.2 spent: over the cap for today
    capped = await ex.choose("auto", GREEDY, CANDS, key_id="k", opted_out=False)
    assert (capped.model, capped.propensity, capped.explored) == (MID, 1.0, False)
    assert await budget.spent("k", utc_day()) == pytest.approx(1.2)
    assert (await ex.choose("auto", GREEDY, CANDS, key_id="other", opted_out=False)).explored  # per key
    ex.charge("k", GREEDY, 5.0)  # a greedy answer costs the cap nothing
    assert await budget.spent("k", utc_day()) == pytest.approx(1.2)


def test_the_opt_out_header_is_validated() -> None:
    assert explore_header({}) and explore_header({"x-routeiq-explore": "On"})
    assert not explore_header({"x-routeiq-explore": "off"}) and not explore_header({"x-routeiq-explore": "0"})
    with pytest.raises(InvalidRequestError) as bad:
        explore_header({"x-routeiq-explore": "sometimes"})
    assert bad.value.status == 400 and bad.value.param == "x-routeiq-explore"


def test_exploration_config_names_known_models_and_a_router_that_can_explore() -> None:
    raw = gateway_config("http://127.0.0.1:1/v1", access={"enabled": False})
    raw["router_settings"]["routers"][0]["exploration"] = {"rate": 0.1, "models": ["nope"]}
    raw["router_settings"]["routers"][1]["exploration"] = {"rate": 0.1}
    with pytest.raises(Exception, match="2 problems") as failed:
        parse_config(raw)
    assert "unknown model 'nope'" in str(failed.value) and "weighted-shuffle" in str(failed.value)


# -- through the app ----------------------------------------------------------------------------
class MidScorer:
    """A router-scoring client whose best guess is always the mid-priced model, and which
    cannot score the cheap one (as an artifact that does not know it)."""

    async def route(self, query: RouteQuery) -> RouteDecision:
        scores = {c.name: (0.9 if c.name == MID else 0.5) for c in query.candidates if c.name != CHEAP}
        return RouteDecision(model=MID, strategy="learned:fake", scores=scores, lam=0.0)

    async def info(self) -> dict[str, Any]:
        return {"replica": "r", "routers": {}}


def _reply(upstream: Upstream, call: ProviderCall) -> MockReply:
    return MockReply()


@pytest.fixture
async def app(tmp_path: Any) -> AsyncIterator[tuple[Any, DecisionWriter]]:
    raw = gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"})
    raw["router_settings"]["routers"][0]["exploration"] = {"rate": 1.0, "models": [CHEAP, PRICEY]}
    cfg = parse_config(raw)
    gateway = build_gateway(cfg, LocalProviderPool(cfg, MockTransport(_reply)), MidScorer())
    asgi = create_app(gateway)
    assert isinstance(gateway.decisions, DecisionWriter)
    async with asgi.router.lifespan_context(asgi):
        yield asgi, gateway.decisions


def sdk(asgi: Any, key: str = MASTER_KEY) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t")
    return openai.AsyncOpenAI(base_url="http://t/v1", api_key=key, http_client=http, max_retries=0)


async def rows(decisions: DecisionWriter) -> dict[str, dict[str, Any]]:
    assert await decisions.flush()
    return {r["request_id"]: r async for r in decisions.store.rows(None)}


async def test_explored_answers_say_so_and_their_decision_rows_carry_the_propensity(
    app: tuple[Any, DecisionWriter],
) -> None:
    asgi, decisions = app
    client = sdk(asgi)
    messages: Any = [{"role": "user", "content": "hi"}]
    explored = [await client.chat.completions.with_raw_response.create(model="auto", messages=messages)
                for _ in range(6)]
    opted_out = await client.chat.completions.with_raw_response.create(
        model="auto", messages=messages, extra_headers={"x-routeiq-explore": "off"})
    by_body = await client.chat.completions.with_raw_response.create(
        model="auto", messages=messages, extra_body={"routeiq": {"explore": False}})
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="auto", messages=messages,
                                             extra_headers={"x-routeiq-explore": "maybe"})
    logged = await rows(decisions)
    for raw in explored:
        assert raw.headers["x-routeiq-explored"] == "true" and raw.headers["x-routeiq-model"] in (CHEAP, PRICEY)
        row = logged[raw.headers["x-request-id"]]
        assert (row["routed_to"], row["propensity"], row["explored"]) == (raw.headers["x-routeiq-model"], 0.5, True)
        # every candidate offered is logged, the one the router could not score as null
        assert row["candidates"] == {CHEAP: None, MID: 0.9, PRICEY: 0.5, "via-litellm": 0.5}
        # the policy's whole distribution: what the gate needs to know which actions the log could take
        assert row["policy"][row["routed_to"]] == row["propensity"] and sum(row["policy"].values()) == 1.0
        assert set(row["policy"]) == {MID, CHEAP, PRICEY}
    for raw in (opted_out, by_body):
        assert "x-routeiq-explored" not in raw.headers and raw.headers["x-routeiq-model"] == MID
        row = logged[raw.headers["x-request-id"]]
        assert (row["routed_to"], row["propensity"], row["explored"], row["policy"]) == (MID, 1.0, False, {MID: 1.0})


async def test_a_key_whose_metadata_opts_out_is_never_explored(app: tuple[Any, DecisionWriter]) -> None:
    asgi, _ = app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as http:
        made = await http.post("/key/generate", headers={"authorization": f"Bearer {MASTER_KEY}"},
                               json={"metadata": {"routeiq_explore": False}})
    assert made.status_code == 200, made.text
    client = sdk(asgi, made.json()["key"])
    for _ in range(5):
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-routeiq-model"] == MID and "x-routeiq-explored" not in raw.headers
