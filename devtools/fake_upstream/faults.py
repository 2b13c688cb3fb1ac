"""Per-request behaviour of the fake upstream.

Knobs come, later ones winning, from: the server's defaults (CLI flags), the request's
``x-fake-<knob>`` headers, a ``fake`` object in the JSON body, and a
``[[fake knob=value ...]]`` directive anywhere in the prompt (the only way that
survives every gateway path unchanged). Knobs:

- ``latency_ms``: delay before a non-streamed answer; ``ttft_ms``: before the first
  chunk; ``itl_ms``: between chunks; ``tokens``: completion length.
- ``error``: ``429``, ``500``, ``503``, ``timeout`` (never answers), ``disconnect``
  (drops the connection before answering), ``disconnect_mid`` (after half the chunks),
  ``context`` / ``content_policy`` (OpenAI's 400 with code ``context_length_exceeded`` /
  ``content_policy_violation``).
- ``retry_after``: seconds sent with a 429/503; ``fail_times`` with ``key``: fail only
  the first N requests carrying that key, then succeed (for retry tests).
- ``only``: the error applies only to requests for this model (for fallback tests).
- ``framing``: the SSE line ends of a stream, ``lf`` (default), ``crlf`` or ``cr``.
- ``usage``: how usage is reported, ``compact`` (``"usage":{``, default), ``spaced``
  (``"usage": {``, as Python's ``json.dumps`` writes it) or ``none`` (never: neither in
  a JSON answer nor in a stream, whatever ``stream_options`` asks).
- ``tool_call``: a chat request that offers a tool of this name is answered with its text
  and then a call of that tool (``finish_reason: tool_calls``; streamed, the arguments
  come in several fragments), unless its last message is a tool result: that turn is
  answered with text, as a model answers once it has the tool's output.
- ``grades``: ``m1:0.9,m2:0.25``: the answer of model ``m1`` ends with the marker
  ``[[fake graded=0.9]]`` (for ``routeiq label``'s tests: the label each model should get).
- ``judge`` (bare ``[[fake judge]]``, e.g. in a rubric): the fake answers as a judge, with
  the line ``SCORE: x`` (``devtools.fake_upstream.judge``); ``tokens`` and ``grades`` do not
  apply to that answer (errors and delays do).

A bare name in a directive (``[[fake judge]]``) sets that knob to ``"1"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

_DIRECTIVE = re.compile(r"\[\[fake ([^\]]*)\]\]")


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    tokens: int = 16
    error: str = ""
    retry_after: float = 1.0
    fail_times: int = 0
    key: str = ""
    only: str = ""
    framing: str = "lf"
    usage: str = "compact"
    tool_call: str = ""
    grades: str = ""
    judge: str = ""

    def merged(self, values: dict[str, Any]) -> Faults:
        """A copy with the known knobs in ``values`` applied (strings are coerced)."""
        types = {f.name: f.type for f in fields(self)}
        kept = {}
        for key, raw in values.items():
            name = key.replace("-", "_")
            if name in types:
                kind = {"float": float, "int": int, "str": str}[str(types[name])]
                kept[name] = kind(raw)
        return replace(self, **kept)


def from_request(defaults: Faults, headers: dict[str, str], body: dict[str, Any], prompt: str) -> Faults:
    """Collect the knobs of one request."""
    knobs: dict[str, Any] = {k[7:]: v for k, v in headers.items() if k.lower().startswith("x-fake-")}
    if isinstance(body.get("fake"), dict):
        knobs.update(body["fake"])
    for match in _DIRECTIVE.finditer(prompt):
        for pair in match.group(1).split():
            name, eq, value = pair.partition("=")
            knobs[name] = value if eq else "1"
    return defaults.merged(knobs)
