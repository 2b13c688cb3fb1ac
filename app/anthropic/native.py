"""What a ``/v1/messages`` request carries to an upstream that speaks Anthropic's API natively.

The route builds one ``NativeMessages`` per request that names a concrete model (``auto``
is always translated): the body as the client sent it (validated), the client's
``anthropic-version``/``anthropic-beta`` headers, and what in it no translation serves
(``only_native``), so the gateway keeps deployments that would get the chat translation
out of its fallback chain (and answers 400 when none is left). Must not: decide where the
request goes; the gateway does, per deployment (``Gateway.speaks_messages``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.gateway.plan import NativeMessages
from app.providers.anthropic_native import FORWARDED_HEADERS
from app.schemas.anthropic import MessagesRequest, NativeBlock, ServerTool


def native_messages(raw: dict[str, Any], request: MessagesRequest, headers: Mapping[str, str]) -> NativeMessages:
    """The native form of a validated Messages request (``raw``: its JSON body)."""
    forwarded = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
    return NativeMessages(raw, forwarded, only_native(request))


def only_native(request: MessagesRequest) -> str | None:
    """The first thing in ``request`` that only a native call serves, named for a 400; else ``None``."""
    for tool in request.tools or ():
        if isinstance(tool, ServerTool):
            return f"the server tool `{tool.type}`"
    for message in request.messages:
        for block in message.content if isinstance(message.content, list) else ():
            if isinstance(block, NativeBlock):
                return f"a `{block.type}` block"
    return None
