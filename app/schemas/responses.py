"""Pydantic models of OpenAI's Responses API request body (``/v1/responses``).

They check what a client of the official ``openai`` SDK (``client.responses.create``)
may send, strictly like ``app.schemas.openai`` (no coercion, no NaN), before
``app.responses.request`` translates the validated values into a chat body for the
gateway's one chat path. An input item, a content part and a tool are told by their
``type``: the types RouteIQ can translate are listed here, any other is a 400 naming
it (never silently dropped). A message item may omit ``type`` (the SDK's
``EasyInputMessage``). Unknown top-level fields are allowed (the SDK grows them) and not
forwarded: only what the translation reads reaches an upstream. Fields that need state
RouteIQ does not keep (``previous_response_id``, ``conversation``, ``background``,
``prompt``) are refused by the translation, with a 400 naming them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator

from app.schemas.openai import RouteIQOptions


def _as_parts(value: Any) -> Any:
    """A string where a list of parts may stand is one ``input_text`` part: one shape to
    validate and translate, and a bad list reports its own error (naming an item's bad
    ``type``), not "Input should be a valid string"."""
    return [{"type": "input_text", "text": value}] if isinstance(value, str) else value


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class InputText(_Open):
    type: Literal["input_text"]
    text: str


class InputImage(_Open):
    """An image by URL or ``data:`` URL; a ``file_id`` needs the Files API, which RouteIQ has not."""

    type: Literal["input_image"]
    image_url: str | None = Field(None, min_length=1)
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class OutputText(_Open):
    """An earlier answer's text, sent back as history in an assistant message."""

    type: Literal["output_text"]
    text: str


class Refusal(_Open):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[InputText | InputImage | OutputText | Refusal, Field(discriminator="type")]
OutputPart = Annotated[InputText | InputImage, Field(discriminator="type")]
Content = Annotated[list[ContentPart], BeforeValidator(_as_parts)]
Output = Annotated[list[OutputPart], BeforeValidator(_as_parts)]


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content


class FunctionCallItem(_Open):
    """A call the model made earlier, sent back as history."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str


class FunctionCallOutputItem(_Open):
    """The caller's result for a ``function_call``."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: Output


class ReasoningItem(_Open):
    """An earlier answer's reasoning, sent back by clients (Codex does): dropped (chat has none)."""

    type: Literal["reasoning"]


def _item_type(value: Any) -> Any:
    """A message item may leave out ``type``; every other item names its own."""
    if isinstance(value, dict):
        return value.get("type", "message")
    return getattr(value, "type", None)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")] | Annotated[ReasoningItem, Tag("reasoning")],
    Discriminator(_item_type)]
Input = Annotated[list[InputItem], BeforeValidator(
    lambda value: [{"role": "user", "content": value}] if isinstance(value, str) else value)]
"""``input`` as a string is one user message."""


class FunctionTool(_Open):
    """A function tool; the hosted tools (``web_search``, ``file_search``, ``mcp``...) are refused."""

    type: str
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("type")
    @classmethod
    def _function_only(cls, kind: str) -> str:
        if kind != "function":
            raise ValueError(f"tool type `{kind[:64]}` is not supported: only `function` tools are")
        return kind


class FunctionChoice(_Open):
    type: Literal["function"]
    name: str = Field(min_length=1)


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(None, min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Open):
    format: TextFormat | None = None


class ResponsesRequest(_Open):
    """``/v1/responses``. ``input`` is a string (one user message) or a list of items."""

    model: str = Field(min_length=1)
    input: Input
    instructions: str | None = None
    stream: bool = False
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    text: TextConfig | None = None
    metadata: dict[str, str] | None = Field(None, description="Echoed on the response, not forwarded.")
    user: str | None = None
    store: bool | None = Field(None, description="Accepted; nothing is stored.")
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None
    routeiq: RouteIQOptions | None = None
