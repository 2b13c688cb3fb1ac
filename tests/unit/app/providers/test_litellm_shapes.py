"""Provider-side parts of LiteLLM's config shapes: a wildcard entry called as the concrete
model the gateway resolved, and upstream 400s classified for the special fallbacks."""

from __future__ import annotations

import orjson
import pytest

from app.config import parse_config
from app.errors import InvalidRequestError, NotFoundError
from app.providers.base import ProviderCall, Upstream
from app.providers.caller import ProviderCaller
from app.providers.errors import from_status
from app.providers.mock import MockReply, MockTransport

RAW = {"model_list": [{"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": "http://127.0.0.1:1/v1"}},
                      {"model_name": "plain", "litellm_params": {"model": "openai/plain", "api_base": "http://127.0.0.1:1/v1"}}]}


async def test_a_wildcard_call_reaches_the_upstream_as_its_concrete_model() -> None:
    seen: list[Upstream] = []

    def handler(upstream: Upstream, call: ProviderCall) -> MockReply:
        seen.append(upstream)
        return MockReply()

    caller = ProviderCaller(parse_config(RAW).provider_settings("default"), MockTransport(handler))
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    await caller.complete(ProviderCall("chat", 0, body, model="openai/gpt-4o"))
    await caller.complete(ProviderCall("chat", 0, body, model="openai/gpt-4o-mini"))
    assert [u.entry.litellm_params.model for u in seen] == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert seen[0].prices.input > seen[1].prices.input > 0  # each priced as itself
    with pytest.raises(NotFoundError):  # a concrete entry cannot be re-pointed by a call
        await caller.complete(ProviderCall("chat", 1, body, model="openai/other"))


@pytest.mark.parametrize(("error", "code"), [
    ({"code": "context_length_exceeded", "type": "invalid_request_error"}, "context_length_exceeded"),
    ({"code": "content_filter"}, "content_policy_violation"),
    ({"type": "content_policy_violation"}, "content_policy_violation"),
    ({"code": "invalid_value"}, "upstream_rejected"),
])
def test_upstream_400s_are_classified(error: dict[str, str], code: str) -> None:
    err = from_status(400, orjson.dumps({"error": {"message": "x", **error}}), None, "m")
    assert isinstance(err, InvalidRequestError) and err.code == code


def test_litellm_exception_text_is_classified() -> None:
    err = from_status(400, b"litellm.ContextWindowExceededError: too long", None, "m")
    assert err.code == "context_length_exceeded"
    assert from_status(400, b"not json", None, "m").code == "upstream_rejected"
