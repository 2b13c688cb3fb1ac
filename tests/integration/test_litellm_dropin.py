"""What a LiteLLM proxy user meets first, through the real Serve graph (issue #17, first slice).

Upstreams in the wild: the fake upstream frames its SSE with CRLF or CR, writes
``"usage": {`` with spaces, or reports no usage at all; each stream must reach the
client intact and be charged (spend rows, decision rows) with the upstream's counts,
or with an estimate marked as one. Clients: the official openai SDK with a
``base_url`` without ``/v1``, and the key in ``x-api-key`` or ``api-key``.
One embedded (SQLite) gateway app with virtual keys and the decision log serves all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.fake_upstream.server import reply_tokens
from tests.integration.gateway_app import PRICE, App, deploy_app

NAME = "dropin"


@pytest.fixture(scope="module")
def app(deploy_gateway: Callable[..., str], upstream: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    yield deploy_app(deploy_gateway, upstream.url, str(tmp_path_factory.mktemp(NAME)), NAME)
    serve.delete(NAME)


def _events(raw: bytes) -> list[bytes]:
    return [e for e in raw.split(b"\n\n") if e.strip()]


def _content(raw: bytes) -> str:
    chunks = [orjson.loads(e[6:]) for e in _events(raw) if e.startswith(b"data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def _expected(text: str) -> str:
    return "".join(reply_tokens({"messages": [{"role": "user", "content": text}]}, 16))


def _exact_cost(model: str, text: str) -> tuple[int, int, float]:
    prompt = len(text.split())  # the fake upstream's count: words of the prompt; 16 tokens answered
    return prompt, 16, (prompt + 16) * PRICE[model]


# Upstreams in the wild -------------------------------------------------------------------------
@pytest.mark.parametrize("framing", ["crlf", "cr"])
def test_crlf_and_cr_framed_streams_are_relayed_and_charged(app: App, framing: str) -> None:
    text = f"framed by {framing} [[fake framing={framing}]]"
    rid, raw = app.stream(MID, text, stream_options={"include_usage": True})
    assert b"\r" not in raw and _content(raw) == _expected(text)  # every token, as LF-framed events
    events = _events(raw)
    assert events[-1] == b"data: [DONE]" and len(events) == 16 + 3  # tokens, stop, usage, [DONE]
    usage = orjson.loads(events[-2][6:])["usage"]
    prompt, completion, cost = _exact_cost(MID, text)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
    assert usage["cost"] == pytest.approx(cost)
    row = app.spend_row(rid)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (prompt, completion, False)
    assert row["cost"] == pytest.approx(cost)


def test_usage_written_with_spaces_is_charged(app: App) -> None:
    text = "spaced usage [[fake usage=spaced]]"
    rid, raw = app.stream("auto", text)
    assert _content(raw) == _expected(text) and b'"usage"' not in raw  # the client did not ask for it
    prompt, completion, cost = _exact_cost(CHEAP, text)  # cost-first: the cheap model answers
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (CHEAP, prompt, completion)
    assert row["cost"] == pytest.approx(cost) and row["usage_estimated"] is False
    decision = app.decision_row(rid)
    assert (decision["prompt_tokens"], decision["completion_tokens"]) == (prompt, completion)
    assert decision["usage_estimated"] is False


def test_a_stream_without_usage_is_charged_an_estimate_marked_as_such(app: App) -> None:
    text = "an upstream that never counts " * 8 + "[[fake usage=none]]"
    rid, raw = app.stream("auto", text, stream_options={"include_usage": True})
    assert _content(raw) == _expected(text) and _events(raw)[-1] == b"data: [DONE]"
    row = app.spend_row(rid)
    assert row["usage_estimated"] is True and row["model"] == CHEAP
    assert row["prompt_tokens"] == len(text) // 4  # ~4 characters a token
    assert 16 <= row["completion_tokens"] <= 16 + 2  # one a relayed event (the stop event and [DONE] too)
    assert row["cost"] == pytest.approx((row["prompt_tokens"] + row["completion_tokens"]) * PRICE[CHEAP])
    decision = app.decision_row(rid)
    assert decision["usage_estimated"] is True and decision["completion_tokens"] == row["completion_tokens"]


def test_a_json_answer_without_usage_is_charged_an_estimate_with_a_header(app: App) -> None:
    text = "plain answer, no usage [[fake usage=none]]"
    body = {"model": MID, "messages": [{"role": "user", "content": text}]}
    resp = app.http.post("/v1/chat/completions", json=body, headers=app.admin)
    assert resp.status_code == 200 and "usage" not in resp.json()
    assert resp.headers["x-routeiq-usage-estimated"] == "true"
    answer = _expected(text)
    assert resp.json()["choices"][0]["message"]["content"] == answer
    row = app.spend_row(resp.headers["x-request-id"])
    assert row["usage_estimated"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (len(text) // 4, -(-len(answer) // 4))
    counted = app.http.post("/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "x"}]},
                            headers=app.admin)
    assert "x-routeiq-usage-estimated" not in counted.headers


# Clients ----------------------------------------------------------------------------------------
def test_the_openai_sdk_works_with_a_base_url_without_v1(app: App) -> None:
    client = openai.OpenAI(base_url=app.base, api_key=app.new_key(), max_retries=0, timeout=30)
    reply = client.chat.completions.create(model=MID, messages=[{"role": "user", "content": "no prefix"}])
    assert reply.choices[0].message.content.startswith("echo: no prefix") and reply.usage.completion_tokens == 16
    stream = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "s"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).startswith("echo: s")
    assert client.completions.create(model=MID, prompt="complete me").choices[0].text.startswith("echo: complete")
    with pytest.raises(openai.NotFoundError):  # no embedding model here: the route is there, the model not
        client.embeddings.create(model="embed-model", input="x")
    assert {m.id for m in client.models.list()} == {CHEAP, MID, "auto"}
    assert client.models.retrieve("auto").id == "auto" and client.models.retrieve(CHEAP).object == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_model_retrieve_is_an_openai_model_or_an_openai_404(app: App, prefix: str) -> None:
    found = app.http.get(f"{prefix}/models/{MID}", headers=app.admin)
    assert found.status_code == 200 and found.json() == {"id": MID, "object": "model", "created": 0,
                                                         "owned_by": "routeiq"}
    missing = app.http.get(f"{prefix}/models/nope/with-a-slash", headers=app.admin)
    assert missing.status_code == 404
    assert missing.json()["error"] | {"message": ""} == {"message": "", "type": "invalid_request_error",
                                                         "param": "model", "code": "model_not_found"}
    assert app.http.get(f"{prefix}/models/{MID}").status_code == 401


def test_a_key_restricted_to_one_model_sees_only_it(app: App) -> None:
    resp = app.http.post("/key/generate", json={"models": [CHEAP]}, headers=app.admin)
    key = resp.json()["key"]
    assert app.http.get(f"/models/{CHEAP}", headers={"x-api-key": key}).status_code == 200
    assert app.http.get(f"/models/{MID}", headers={"x-api-key": key}).status_code == 404  # as if absent


@pytest.mark.parametrize("header", ["x-api-key", "api-key"])
def test_x_api_key_and_api_key_are_accepted_like_bearer(app: App, header: str) -> None:
    key = app.new_key()
    body = {"model": MID, "messages": [{"role": "user", "content": f"via {header}"}]}
    for path in ("/v1/chat/completions", "/chat/completions"):
        resp = app.http.post(path, json=body, headers={header: key})
        assert resp.status_code == 200, resp.text
    assert app.http.get("/models", headers={header: MASTER_KEY}).status_code == 200
    info = app.http.get("/key/info", params={"key": key}, headers={header: key})
    assert info.status_code == 200 and info.json()["key_id"]
    for bad in ("sk-unknown-but-shaped-0000000000000000", "not a key", "Bearer " + key, ""):
        refused = app.http.post("/chat/completions", json=body, headers={header: bad})
        assert refused.status_code == 401, (bad, refused.text)
        assert refused.json()["error"]["type"] == "authentication_error"
    wrong_bearer = app.http.post("/chat/completions", json=body,
                                 headers={"authorization": "Bearer sk-wrong", header: key})
    assert wrong_bearer.status_code == 401  # Authorization, when sent, is the credential
