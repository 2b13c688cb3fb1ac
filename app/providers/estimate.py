"""Token estimates where no upstream count exists: about 4 characters a token.

Before a call, ``estimate_tokens`` sizes the prompt (context-window checks, what
admission reserves). After a call whose upstream reported no usage, ``estimated_usage``
prices the prompt and the answer's text the same way: a rough charge, marked
``estimated``, is closer to the truth than the zero that would let such an upstream
be used for free past every budget. Must not: tokenize (no tokenizer per model here;
this runs on the request path).
"""

from __future__ import annotations

from typing import Any

from app.providers.base import Prices, Usage

CHARS_PER_TOKEN = 4


def estimate_tokens(body: dict[str, Any]) -> int:
    """A cheap prompt-size estimate (4 characters a token) for context-window checks."""
    if "messages" in body:
        chars = sum(len(str(m.get("content") or "")) for m in body["messages"])
    else:
        chars = len(str(body.get("prompt") or ""))
    return chars // CHARS_PER_TOKEN


def _tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def estimated_usage(body: dict[str, Any], answer: dict[str, Any], prices: Prices) -> Usage:
    """The usage of a JSON answer that reported none: its prompt (an embedding's input)
    and the text of its choices (or of an Anthropic message's blocks), at the deployment's prices."""
    prompt = estimate_tokens(body) or _tokens(len(str(body.get("input") or "")))
    chars = 0
    for choice in answer.get("choices") or ():
        if isinstance(choice, dict):
            message = choice.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            chars += len(str(content or "")) + len(str(choice.get("text") or ""))
    blocks = answer.get("content")  # an Anthropic message's
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, dict):
            chars += len(str(block.get("text") or block.get("thinking") or ""))
    completion = _tokens(chars)
    return Usage(prompt, completion, prices.cost(prompt, completion), estimated=True)
