"""Pydantic models of OpenAI's request bodies: what a client may send, checked strictly.

Handlers validate the parsed JSON with these models and the gateway is steered only by
the validated values (``Steering``: model, stream, usage chunk, λ); the original dict is
forwarded (never ``model_dump``: re-serialising costs CPU on the hot path). Validation
is strict (no coercion): ``"stream": "false"`` or ``"max_tokens": "5"`` is a 400 naming
the field, never a truthy string steering a branch, and no number may be NaN or infinite.
Unknown fields are allowed; what reaches a provider is decided by its client
(``app.providers.params``: an allowlist for litellm, connection keys stripped for the
native pass-through).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class RouteIQOptions(BaseModel):
    """RouteIQ's own request extension (body field ``routeiq``)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    lam: float | None = Field(None, alias="lambda", ge=0, description="Willingness to pay.")
    explore: bool | None = Field(None, description="false: never serve this request by exploration.")


class _Sampling(_Open):
    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    user: str | None = None
    routeiq: RouteIQOptions | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
    stream: Literal[False] = Field(False, description="Embeddings are never streamed (400 otherwise).")


@dataclass(frozen=True)
class Steering:
    """The validated values that steer the gateway for one request."""

    model: str
    stream: bool = False
    include_usage: bool = False
    lam: float | None = None
    """The body's ``routeiq.lambda`` (it wins over the ``x-routeiq-lambda`` header)."""
    max_tokens: int | None = None
    """``max_tokens`` (or chat's ``max_completion_tokens``): what admission reserves per choice."""
    n: int = 1
    explore: bool = True
    """False when the body's ``routeiq.explore`` is false: the router serves its best guess."""

    @classmethod
    def of(cls, request: BaseModel) -> Steering:
        if isinstance(request, _Sampling):
            usage = request.stream_options.include_usage if request.stream_options else False
            lam = request.routeiq.lam if request.routeiq else None
            most = request.max_tokens
            if isinstance(request, ChatCompletionRequest) and request.max_completion_tokens is not None:
                most = request.max_completion_tokens if most is None else min(most, request.max_completion_tokens)
            explore = request.routeiq.explore is not False if request.routeiq else True
            return cls(request.model, request.stream, usage, lam, most, request.n or 1, explore)
        if isinstance(request, EmbeddingRequest):
            return cls(request.model)
        raise TypeError(f"not an inference request: {type(request).__name__}")
