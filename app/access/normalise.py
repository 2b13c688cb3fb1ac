"""Values made storable before they are queued: a buffered row must never be refused.

The spend buffer and the decision log queue rows on the request path and write them
later in batches; a row the database refuses would fail its whole batch. So each row
is normalised once, when it is queued, from its table's own column types:

- strings: NUL bytes (Postgres ``text`` refuses them) and lone surrogates (not UTF-8:
  the driver cannot encode them) become U+FFFD, and a string longer than its
  ``VARCHAR(n)`` is cut to ``n`` characters;
- integers clamped to their column (``INTEGER``: 32 bits, ``BIGINT``: 64 bits);
- floats: NaN and ±inf become NULL, or 0.0 where the column is NOT NULL (a NaN cost
  would make every later sum NaN);
- JSON columns: NaN/inf and integers beyond 64 bits become null, strings are cleaned,
  keys become strings, anything JSON cannot hold becomes null, nesting is cut at
  ``JSON_DEPTH``.

The cost is O(row): a few checks per column, and for each string one ``isascii`` (or,
for non-ASCII text, one UTF-8 encode) over at most the column's size. Must not: raise
on any value, or touch the request path's data (it builds new rows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Table
from sqlalchemy.sql.schema import Column

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
JSON_DEPTH = 32
"""Deeper JSON values are cut (to null) at this depth."""
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
Clean = Callable[[Any], Any]


def text(value: Any, limit: int | None = None) -> str:
    """``value`` as a string Postgres stores: no NUL, valid UTF-8, at most ``limit`` characters."""
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit:
        s = s[:limit]
    if "\x00" in s:
        s = s.replace("\x00", REPLACEMENT)
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = _SURROGATE.sub(REPLACEMENT, s)
    return s


def finite(value: Any) -> float | None:
    """A finite float, or ``None`` (NaN, ±inf, not a number, too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def clamp(value: Any, bound: int) -> int | None:
    """An integer within ±``bound`` (a finite float is truncated); ``None`` if not a number."""
    if isinstance(value, bool) or not isinstance(value, int):
        f = finite(value)
        if f is None:
            return None
        value = f
    return max(-bound - 1, min(bound, int(value)))


def json_safe(value: Any, depth: int = JSON_DEPTH) -> Any:
    """A copy of ``value`` that any JSON column and serialiser accepts (see the module doc)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return text(value)
    if isinstance(value, int):
        return value if -INT64_MAX - 1 <= value <= INT64_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth <= 1:
        return None
    if isinstance(value, Mapping):
        return {text(k): json_safe(v, depth - 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, depth - 1) for v in value]
    return None


def _cleaner(column: Column[Any]) -> Clean:
    kind, nullable = column.type, bool(column.nullable)
    if isinstance(kind, String):  # Text too
        length = kind.length
        return lambda v: None if v is None else text(v, length)
    if isinstance(kind, (Integer, BigInteger)):
        bound = INT64_MAX if isinstance(kind, BigInteger) else INT32_MAX
        default = None if nullable else 0
        return lambda v: default if (c := clamp(v, bound)) is None else c
    if isinstance(kind, Float):
        default_f = None if nullable else 0.0
        return lambda v: default_f if (f := finite(v)) is None else f
    if isinstance(kind, JSON):
        return json_safe
    if isinstance(kind, Boolean):
        return lambda v: None if v is None and nullable else bool(v)
    if isinstance(kind, DateTime):
        return lambda v: v if isinstance(v, datetime) else None
    return lambda v: v


class Normaliser:
    """Normalises rows of one table; the per-column cleaners are built once."""

    def __init__(self, table: Table) -> None:
        self._clean: dict[str, Clean] = {c.name: _cleaner(c) for c in table.columns}

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with every column's value made storable (other keys are kept as they are)."""
        clean = self._clean
        return {k: clean[k](v) if k in clean else v for k, v in values.items()}
