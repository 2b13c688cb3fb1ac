"""Anthropic usage as RouteIQ's: the prompt's three parts at their own prices, and the
stream relay that reads them from ``message_start``/``message_delta``."""

from __future__ import annotations

import orjson
import pytest

from app.config import ModelEntry
from app.providers.anthropic_usage import AnthropicRelay, anthropic_usage
from app.providers.base import Prices
from app.providers.cost_map import model_info

PRICES = Prices(1e-6, 5e-6, cache_write=1.25e-6, cache_read=0.1e-6)


def _event(kind: str, payload: dict[str, object]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def test_each_part_of_the_prompt_is_priced_as_its_own() -> None:
    usage = anthropic_usage({"input_tokens": 10, "cache_creation_input_tokens": 100,
                             "cache_read_input_tokens": 1000, "output_tokens": 7}, PRICES)
    assert (usage.prompt_tokens, usage.completion_tokens) == (1110, 7)
    assert usage.cost == pytest.approx(10 * 1e-6 + 100 * 1.25e-6 + 1000 * 0.1e-6 + 7 * 5e-6)
    assert not usage.estimated


def test_unknown_cache_prices_are_the_input_price() -> None:
    usage = anthropic_usage({"input_tokens": 1, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3,
                             "output_tokens": 4}, Prices(1e-6, 2e-6))
    assert usage.cost == pytest.approx(6 * 1e-6 + 4 * 2e-6)


@pytest.mark.parametrize("odd", [None, "10", -5, True, float("nan"), 10**12])
def test_odd_counts_never_refund_or_crash(odd: object) -> None:
    usage = anthropic_usage({"input_tokens": odd, "cache_read_input_tokens": odd, "output_tokens": 3}, PRICES)
    assert usage.completion_tokens == 3 and usage.prompt_tokens in (0, 2 * 10**9) and usage.cost >= 0


def test_a_missing_usage_object_counts_nothing() -> None:
    assert anthropic_usage(None, PRICES).prompt_tokens == 0


def _stream(start_usage: dict[str, int], delta_usage: dict[str, int]) -> bytes:
    return (_event("message_start", {"message": {"id": "m", "content": [], "usage": start_usage}})
            + _event("ping", {})
            + _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                                    "text": 'quoting "message_delta"'}})
            + _event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": delta_usage})
            + _event("message_stop", {}))


def test_the_relay_forwards_bytes_unchanged_and_the_final_counts_win() -> None:
    raw = _stream({"input_tokens": 5, "cache_read_input_tokens": 20, "output_tokens": 1}, {"output_tokens": 9})
    relay = AnthropicRelay(PRICES)
    out = b"".join(relay.feed(raw[i:i + 7]) for i in range(0, len(raw), 7)) + relay.flush()
    assert out == raw and relay.done
    assert relay.usage is not None and (relay.usage.prompt_tokens, relay.usage.completion_tokens) == (25, 9)
    assert relay.usage.cost == pytest.approx(5 * 1e-6 + 20 * 0.1e-6 + 9 * 5e-6)


def test_crlf_framing_is_relayed_as_lf() -> None:
    raw = _stream({"input_tokens": 5, "output_tokens": 1}, {"output_tokens": 2})
    relay = AnthropicRelay(PRICES)
    out = relay.feed(raw.replace(b"\n", b"\r\n")) + relay.flush()
    assert out == raw and relay.done and relay.usage is not None and relay.usage.completion_tokens == 2


def test_a_stream_without_usage_or_stop_reports_neither() -> None:
    relay = AnthropicRelay(PRICES)
    relay.feed(_event("message_start", {"message": {"id": "m"}}) + _event("ping", {}))
    assert relay.usage is None and not relay.done


def _entry(**info: float) -> ModelEntry:
    return ModelEntry.model_validate({"model_name": "c", "litellm_params": {"model": "anthropic/claude-haiku-4-5"},
                                      "model_info": info})


def test_cache_prices_come_from_config_else_litellms_map() -> None:
    mapped = model_info("anthropic/claude-haiku-4-5")
    assert mapped["cache_read_input_token_cost"] < mapped["input_cost_per_token"]  # the map knows this model
    from_map = Prices.of(_entry())
    keys = ("input_cost_per_token", "cache_creation_input_token_cost", "cache_read_input_token_cost")
    assert (from_map.input, from_map.cache_write, from_map.cache_read) == tuple(mapped[k] for k in keys)
    own = Prices.of(_entry(input_cost_per_token=1.0, output_cost_per_token=2.0,
                           cache_creation_input_token_cost=3.0, cache_read_input_token_cost=0.5))
    assert (own.input, own.output, own.cache_write, own.cache_read) == (1.0, 2.0, 3.0, 0.5)
    partly = Prices.of(_entry(input_cost_per_token=1.0, output_cost_per_token=2.0))  # config's token prices win
    assert (partly.input, partly.cache_read) == (1.0, mapped["cache_read_input_token_cost"])
