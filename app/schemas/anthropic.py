"""Pydantic models of Anthropic's Messages API request bodies (``/v1/messages``).

They check what a client of the official ``anthropic`` SDK (or Claude Code) may send,
strictly like ``app.schemas.openai`` (no coercion, no NaN), before
``app.anthropic.request`` translates the validated values into an OpenAI chat body for
the gateway's one chat path. A content block is told by its ``type``: the types RouteIQ
can translate are listed here, any other is a 400 naming it (never silently dropped).
Unknown top-level fields are allowed (the SDK grows them) and not forwarded: only what
the translation reads reaches an upstream. ``cache_control`` on blocks is accepted; the
translation drops it. A request served natively (an ``anthropic/`` deployment,
``app.providers.anthropic_native``) reaches its upstream as sent, unknown fields,
``cache_control``, ``thinking`` and the native-only blocks and server tools included.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from app.schemas.openai import RouteIQOptions


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class TextBlock(_Open):
    type: Literal["text"]
    text: str


class Base64Source(_Open):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(min_length=1)


class URLSource(_Open):
    type: Literal["url"]
    url: str = Field(min_length=1)


class ImageBlock(_Open):
    type: Literal["image"]
    source: Annotated[Base64Source | URLSource, Field(discriminator="type")]


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


ResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[ResultPart] = ""
    is_error: bool = False


class ThinkingBlock(_Open):
    """An earlier answer's reasoning, sent back by clients: dropped (no OpenAI equivalent)."""

    type: Literal["thinking", "redacted_thinking"]


NativeBlockType = Literal["document", "search_result", "server_tool_use", "web_search_tool_result",
                         "web_fetch_tool_result", "code_execution_tool_result", "mcp_tool_use", "mcp_tool_result",
                         "container_upload"]


class NativeBlock(_Open):
    """A block only an upstream speaking Anthropic's API serves (a PDF ``document``, a server
    tool's use and result...): passed through natively, never translated (a 400 elsewhere)."""

    type: NativeBlockType


ContentBlock = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | NativeBlock,
                         Field(discriminator="type")]


class Message(_Open):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class Tool(_Open):
    """A client tool (Anthropic's server tools are ``ServerTool``s)."""

    type: Literal["custom"] | None = None
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]


class ServerTool(_Open):
    """One of Anthropic's server tools (``web_search_20250305``, ``bash_20250124``...): passed
    through natively, never translated (a 400 elsewhere)."""

    type: str = Field(pattern=r"^[a-z_]+_[0-9]{8}$")
    name: str = Field(min_length=1, max_length=128)


def _tool_kind(value: Any) -> str:
    """``server`` for a tool whose ``type`` names one of Anthropic's server tools, else ``custom``."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "server" if kind is not None and kind != "custom" else "custom"


AnyTool = Annotated[Annotated[Tool, Tag("custom")] | Annotated[ServerTool, Tag("server")], Discriminator(_tool_kind)]
"""A client tool, or a server tool (told by ``type``; a 400 names the field under ``custom``/``server``)."""


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(None, min_length=1)
    disable_parallel_tool_use: bool = False


class Metadata(_Open):
    user_id: str | None = None


class CountTokensRequest(_Open):
    """``/v1/messages/count_tokens``: the prompt part of a Messages request."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[AnyTool] | None = None
    tool_choice: ToolChoice | None = None


class MessagesRequest(CountTokensRequest):
    """``/v1/messages``. ``max_tokens`` is required, as Anthropic requires it (400 if missing)."""

    max_tokens: int = Field(ge=1)
    stream: bool = False
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0, description="Accepted, not forwarded: OpenAI's chat API has none.")
    metadata: Metadata | None = None
    routeiq: RouteIQOptions | None = None
