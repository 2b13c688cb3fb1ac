"""Types crossing the provider-call boundary, and the cost of a call.

``ProviderCall``/``ProviderResult``/``StreamItem`` cross DeploymentHandles (small,
picklable). ``Upstream`` and ``ProviderClient`` live inside a provider replica only:
a client (the native pass-through, litellm, or a test's ``MockTransport``) is handed
an ``Upstream`` (the model entry with its prices and connection settings), never the
config, so every client prices and times out calls the same way.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from app.config import ModelEntry
from app.errors import UpstreamTimeoutError

Endpoint = Literal["chat", "completions", "embeddings", "messages", "responses"]
"""``messages``: an Anthropic Messages body, called natively (``app.providers.anthropic_native``)."""


@dataclass(frozen=True)
class ProviderCall:
    """One request for a provider deployment (picklable: it crosses a handle)."""

    endpoint: Endpoint
    deployment: int
    """Index of the entry in ``model_list``."""
    body: dict[str, Any]
    """The client's validated JSON body; ``model`` is replaced by the provider's."""
    request_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers forwarded upstream (request id, W3C trace context)."""
    include_usage: bool = False
    """Whether the client asked for the usage chunk of a stream."""
    timeout_s: float = 60.0
    model: str | None = None
    """For a wildcard entry (``openai/*``): the concrete ``litellm_params.model`` to call."""
    entry: ModelEntry | None = None
    """The entry as the ingress's live config has it (after a config sync changed it in place),
    used instead of the one the provider replica was bound with."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False
    """Not reported by the upstream: estimated by the gateway (a stream cut or abandoned, or
    an upstream that reports no usage)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ProviderResult:
    """A finished, non-streamed answer: the OpenAI JSON body, ready to send."""

    body: bytes
    usage: Usage
    model: str
    finish_reason: str | None = None

    def span_attributes(self) -> dict[str, str | int]:
        """GenAI semantic-convention attributes of the answer."""
        attrs: dict[str, str | int] = {"gen_ai.response.model": self.model,
                                       "gen_ai.usage.input_tokens": self.usage.prompt_tokens,
                                       "gen_ai.usage.output_tokens": self.usage.completion_tokens}
        if self.finish_reason:
            attrs["gen_ai.response.finish_reasons"] = self.finish_reason
        return attrs


@dataclass(frozen=True)
class StreamEnd:
    """Last item of a stream: what it used and cost (never sent to the client)."""

    usage: Usage | None
    """``None``: the upstream reported no usage (the exchange charges an estimate)."""


StreamItem = bytes | StreamEnd


async def next_item(items: AsyncIterator[StreamItem], idle_s: float, name: str) -> StreamItem | None:
    """The stream's next item, ``None`` at its end. A stream silent for ``idle_s`` is a 504
    naming ``name``: the provider replica bounds each gap of the upstream's stream with its
    model's timeout, and the ingress bounds each gap of the whole path with its own."""
    try:
        async with asyncio.timeout(idle_s):
            return await anext(items)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        raise UpstreamTimeoutError(f"{name}: stream silent for {idle_s:g} s") from None


@dataclass(frozen=True)
class Upstream:
    """One model entry as a client calls it: its parameters, prices and timeouts."""

    index: int
    """Index of the entry in ``model_list``."""
    entry: ModelEntry
    prices: Prices
    connect_timeout_s: float = 10.0
    stream_idle_timeout_s: float = 120.0
    """Longest silence between two reads of a stream (a healthy long stream is never cut)."""

    @property
    def name(self) -> str:
        return self.entry.model_name


class ProviderClient(Protocol):
    """How a provider deployment talks to one kind of upstream (the transport seam).

    Implementations raise only ``RouteIQError``s (``app.providers.errors`` translates
    foreign ones) and never retry: retries, deadlines and spans are the caller's.
    """

    async def complete(self, upstream: Upstream, call: ProviderCall) -> ProviderResult:
        """A non-streamed chat/completions/embeddings call."""
        ...

    def stream(self, upstream: Upstream, call: ProviderCall) -> AsyncIterator[StreamItem]:
        """SSE bytes of a streamed call, then one ``StreamEnd``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Prices:
    """$ per token; from ``model_info``, else litellm's cost map (loaded offline)."""

    input: float = 0.0
    output: float = 0.0
    cache_write: float | None = None
    """$ per prompt token written to a prompt cache (Anthropic's ``cache_creation_input_tokens``);
    ``None``: unknown, charged at the input price."""
    cache_read: float | None = None
    """$ per prompt token read from a prompt cache; ``None``: unknown, charged at the input price."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input + completion_tokens * self.output

    def cached_cost(self, written: int, read: int) -> float:
        """The cost of prompt tokens written to and read from a prompt cache (on top of ``cost``)."""
        write = self.input if self.cache_write is None else self.cache_write
        return written * write + read * (self.input if self.cache_read is None else self.cache_read)

    @classmethod
    def of(cls, entry: ModelEntry) -> Prices:
        info = entry.model_info
        complete = None not in (info.input_cost_per_token, info.output_cost_per_token,
                                info.cache_creation_input_token_cost, info.cache_read_input_token_cost)
        mapped = {} if complete else _litellm_prices(entry.litellm_params.model)  # the map: once a process
        write = _first(info.cache_creation_input_token_cost, mapped.get("cache_creation_input_token_cost"))
        read = _first(info.cache_read_input_token_cost, mapped.get("cache_read_input_token_cost"))
        if info.input_cost_per_token is not None or info.output_cost_per_token is not None:
            return cls(info.input_cost_per_token or 0.0, info.output_cost_per_token or 0.0, write, read)
        return cls(_first(mapped.get("input_cost_per_token")) or 0.0,
                   _first(mapped.get("output_cost_per_token")) or 0.0, write, read)


def _first(*values: Any) -> float | None:
    """The first value that is a number (config first, then litellm's map)."""
    return next((float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)), None)


def _litellm_prices(model: str) -> dict[str, Any]:
    from app.providers.cost_map import model_info

    return model_info(model)


MAX_REPORTED_TOKENS = 10**9


def reported_tokens(value: Any) -> int:
    """A token count an upstream reported: an int in [0, 1e9] (anything else counts 0),
    so an odd or hostile upstream can neither crash a request nor refund a budget."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return 0
    return int(min(max(value, 0), MAX_REPORTED_TOKENS))


def usage_from(payload: dict[str, Any] | None, prices: Prices) -> Usage:
    """Usage with cost from an OpenAI ``usage`` object (counts sanitised, cost from our prices)."""
    payload = payload if isinstance(payload, dict) else {}
    prompt = reported_tokens(payload.get("prompt_tokens"))
    completion = reported_tokens(payload.get("completion_tokens"))
    return Usage(prompt, completion, prices.cost(prompt, completion))
