from __future__ import annotations

import pytest

from app.config import parse_config
from app.errors import InvalidRequestError, NotFoundError
from app.gateway.catalog import ModelCatalog, fitting, query_text, required_capabilities
from devtools.configs import CHEAP, MID, PRICEY, gateway_config

CATALOG = ModelCatalog(parse_config(gateway_config("http://127.0.0.1:1/v1")))
AUTO = CATALOG.routers["auto"].candidates


def body(text: str = "hi", **extra) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def test_router_candidates_are_chat_models_with_prices_per_million() -> None:
    assert {c.name: c.price for c in AUTO} == {CHEAP: pytest.approx(0.1), MID: pytest.approx(0.5),
                                               PRICEY: pytest.approx(2.0), "via-litellm": pytest.approx(1.0)}


def test_fitting_filters_context_capabilities_and_allowlist() -> None:
    assert CHEAP in {c.name for c in fitting(AUTO, body())}
    assert CHEAP not in {c.name for c in fitting(AUTO, body("x" * 1000))}
    tools = body(tools=[{"type": "function", "function": {"name": "f"}}])
    assert {c.name for c in fitting(AUTO, tools)} == {MID, PRICEY}
    assert {c.name for c in fitting(AUTO, body(), allowed={PRICEY})} == {PRICEY}
    with pytest.raises(InvalidRequestError):
        fitting(AUTO, tools, allowed={CHEAP})


def test_capabilities_and_query_text() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "q"}]
    image = {"role": "user", "content": parts}
    assert required_capabilities({"messages": [image]}) == {"vision"}
    assert required_capabilities({"response_format": {"type": "json_object"}, "messages": []}) == {"json"}
    assert query_text({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}) == "a"
    assert query_text({"messages": [image]}) == " q"


def test_unknown_model_is_404() -> None:
    with pytest.raises(NotFoundError):
        CATALOG.model("nope")
