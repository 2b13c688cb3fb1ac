"""``/v1/messages`` passed through natively to an Anthropic upstream, through the real Serve
graph, driven by the official ``anthropic`` SDK.

One embedded (SQLite) gateway app: the two OpenAI-format models of ``two_model_config``
and ``claude``, an ``anthropic/`` deployment whose ``api_base`` is the fake upstream (its
``/v1/messages`` speaks Anthropic's format and counts ``cache_control`` texts as cache
writes, then reads). What only survives natively (``cache_control``, ``thinking``, a
``document`` block) must reach the upstream untouched, the answer must come back as the
upstream sent it, and spend must be charged from Anthropic's usage at the model's prices,
cache writes and reads included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from devtools.configs import MID
from devtools.fake_upstream.messages import SIGNATURE, THINKING
from devtools.fake_upstream.server import reply_tokens
from tests.access_support import access_general
from tests.integration.gateway_app import SMALL, App, two_model_config

NAME = "anthropic-native"
CLAUDE = "claude"
IN, OUT, WRITE, READ = 1e-6, 2e-6, 3e-6, 0.5e-6
PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}


@pytest.fixture(scope="module")
def app(deploy_gateway: Callable[..., str], upstream: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    tmp = str(tmp_path_factory.mktemp("native"))
    config = two_model_config(upstream.url, access_general("embedded", tmp), NAME)
    config["model_list"].append({
        "model_name": CLAUDE, "provider_group": NAME,
        "litellm_params": {"model": "anthropic/claude-up", "api_base": upstream.url, "api_key": "sk-ant"},
        "model_info": {"input_cost_per_token": IN, "output_cost_per_token": OUT,
                       "cache_creation_input_token_cost": WRITE, "cache_read_input_token_cost": READ}})
    overrides = {"Ingress": SMALL, f"Provider-{NAME}": SMALL, "RouterScoring": SMALL}
    url = deploy_gateway(config, name=NAME, route_prefix=f"/{NAME}", overrides=overrides)
    yield App(url, f"sqlite:///{tmp}/routeiq.db")
    serve.delete(NAME)


@pytest.fixture(scope="module")
def client(app: App) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=app.base, api_key=app.new_key(), max_retries=0, timeout=30)


def _expected(text: str) -> str:
    return "".join(reply_tokens({"messages": [{"role": "user", "content": text}]}, 16))


def _received(upstream: Any, rid: str) -> dict[str, Any]:
    return next(r for r in upstream.state.requests if r["headers"].get("x-request-id") == rid)


def test_a_plain_message_is_passed_through_and_charged_from_anthropics_usage(
        app: App, client: anthropic.Anthropic, upstream: Any) -> None:
    text = "native plain message"
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=64, system="be brief",
                                                   messages=[{"role": "user", "content": text}])
    message, rid = raw.parse(), raw.headers["x-request-id"]
    assert raw.headers["x-routeiq-model"] == CLAUDE and message.model == "claude-up"  # the upstream's answer
    assert message.id.startswith("msg_fake_") and message.content[0].text == _expected(text)  # type: ignore[union-attr]
    got = _received(upstream, rid)
    assert got["path"] == "/v1/messages" and got["headers"]["x-api-key"] == "sk-ant"
    assert got["headers"]["anthropic-version"] and "authorization" not in got["headers"]
    assert got["body"] == {"model": "claude-up", "max_tokens": 64, "system": "be brief",
                           "messages": [{"role": "user", "content": text}]}
    prompt = len(f"be brief {text}".split())
    assert (message.usage.input_tokens, message.usage.output_tokens) == (prompt, 16)
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (CLAUDE, prompt, 16)
    assert row["cost"] == pytest.approx(prompt * IN + 16 * OUT) and row["usage_estimated"] is False


def test_a_stream_is_anthropics_own_events_and_charged(app: App, client: anthropic.Anthropic) -> None:
    text = "native stream [[fake framing=crlf]]"
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": text}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
        rid = stream.response.headers["x-request-id"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "message_delta" in kinds
    assert final.content[0].text == _expected(text) and final.model == "claude-up"  # type: ignore[union-attr]
    prompt = len(text.split())
    assert (final.usage.input_tokens, final.usage.output_tokens) == (prompt, 16)
    row = app.spend_row(rid)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (prompt, 16, False)
    assert row["cost"] == pytest.approx(prompt * IN + 16 * OUT)


def test_cache_control_thinking_and_documents_survive_and_cache_counts_are_priced(
        app: App, client: anthropic.Anthropic, upstream: Any) -> None:
    system = [{"type": "text", "text": "a cached system prompt of eight words here",
               "cache_control": {"type": "ephemeral"}}]
    turn = [{"role": "user", "content": [PDF, {"type": "text", "text": "summarise the document"}]}]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    rids, usages = [], []
    for _ in range(2):  # the first call writes the cached prefix, the second reads it
        raw = client.messages.with_raw_response.create(
            model=CLAUDE, max_tokens=2048, system=system, messages=turn, thinking=thinking,  # type: ignore[arg-type]
            extra_headers={"anthropic-beta": "pdfs-2024-09-25"})
        message = raw.parse()
        assert message.content[0].type == "thinking" and message.content[0].thinking == THINKING
        assert message.content[0].signature == SIGNATURE and message.content[1].type == "text"
        rids.append(raw.headers["x-request-id"])
        usages.append(message.usage)
    got = _received(upstream, rids[0])
    assert got["body"]["system"] == system and got["body"]["messages"] == turn and got["body"]["thinking"] == thinking
    assert got["headers"]["anthropic-beta"] == "pdfs-2024-09-25"
    first, second = usages
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (8, 0)
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, 8)
    fresh = 3  # "summarise the document": the fake counts words
    rows = [app.spend_row(rid) for rid in rids]
    assert [r["prompt_tokens"] for r in rows] == [fresh + 8, fresh + 8]
    assert rows[0]["cost"] == pytest.approx(fresh * IN + 8 * WRITE + 16 * OUT)
    assert rows[1]["cost"] == pytest.approx(fresh * IN + 8 * READ + 16 * OUT)


def test_upstream_errors_and_untranslatable_requests_are_anthropic_shaped(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=CLAUDE, max_tokens=8, messages=[{"role": "user", "content": "[[fake error=429]]"}])
    assert limited.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as refused:  # an OpenAI-format model cannot read a PDF block
        client.messages.create(model=MID, max_tokens=8, messages=[{"role": "user", "content": [PDF]}])  # type: ignore[list-item]
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
