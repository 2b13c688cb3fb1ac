"""Server-sent event framing, as the WHATWG spec defines it, over bytes.

Why not a library: the relay must forward an upstream's bytes as they are and parse
only the few events it has to look into (usage, ``[DONE]``). Decoders such as
httpx-sse (or the openai SDK's private ``SSEDecoder``) decode every line to ``str``
and build an object per event, and what they give back would have to be serialised
again; the relay forwards a read after one or two byte searches (bench/sse_relay.py).

What the spec asks, and where it is done:

- lines end with ``\\r\\n``, ``\\n`` or ``\\r``: ``LineEndings`` turns each into ``\\n``,
  across reads (a ``\\r`` ending one read and a ``\\n`` starting the next are one
  line end). JSON never holds a raw CR, so this changes no payload;
- a blank line ends an event: after ``LineEndings``, ``\\n\\n``;
- lines starting with ``:`` are comments, ignored by ``data_of``; ``data:`` with or
  without one space after the colon; several ``data`` lines are joined with ``\\n``;
- fields other than ``data`` (``event``, ``id``, ``retry``) are kept by ``with_data``.

Must not: cost anything per read of a LF-framed stream with nothing to look into (the
relay calls ``LineEndings`` only for reads with a CR, and ``USAGE_OBJECT`` is one C search).
"""

from __future__ import annotations

import re


class LineEndings:
    """Turns CRLF and CR line ends into LF across a stream of reads."""

    def __init__(self) -> None:
        self.pending = False
        """The previous read ended with CR: a LF starting this one belongs to it."""

    def __call__(self, data: bytes) -> bytes:
        if self.pending and data[:1] == b"\n":
            data = data[1:]
        self.pending = data[-1:] == b"\r"
        if b"\r" not in data:
            return data
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def complete_events(buffered: bytes) -> tuple[bytes, bytes]:
    """(the complete events, the partial one after them) of LF-framed bytes: a blank line ends an event."""
    cut = buffered.rfind(b"\n\n") + 2
    return (buffered[:cut], buffered[cut:]) if cut >= 2 else (b"", buffered)


def data_of(event: bytes) -> bytes | None:
    """The event's ``data`` (its data lines joined by LF); ``None`` if it has none."""
    if event[:5] == b"data:" and b"\n" not in event:  # the common case: one data line
        return event[6:] if event[5:6] == b" " else event[5:]
    parts = [_value(line) for line in event.split(b"\n") if line[:5] == b"data:" and _name(line) == b"data"]
    return b"\n".join(parts) if parts else None


def with_data(event: bytes, data: bytes) -> bytes:
    """The event with its data replaced by ``data`` (one line), other fields kept, comments dropped."""
    kept = [line for line in event.split(b"\n") if line and line[:1] != b":" and _name(line) != b"data"]
    return b"\n".join([*kept, b"data: " + data]) + b"\n\n"


def _name(line: bytes) -> bytes:
    return line.partition(b":")[0]


def _value(line: bytes) -> bytes:
    value = line.partition(b":")[2]
    return value[1:] if value[:1] == b" " else value


USAGE_OBJECT = re.compile(rb'"usage"(?:[ \t\r\n]|data:)*:(?:[ \t\r\n]|data:)*\{')
"""Where a ``usage`` key is followed by an object (``"usage": {`` yes, ``"usage":null`` no),
looked for in raw event bytes: JSON whitespace and the ``data:`` of a continued line may sit
between. A cheap look, in C, before a full parse; the parse decides. A key written with
escapes (``\\u0075sage``) is not seen."""
