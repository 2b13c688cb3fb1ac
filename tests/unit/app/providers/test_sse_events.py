from __future__ import annotations

import pytest

from app.providers.sse_events import USAGE_OBJECT, LineEndings, data_of, with_data


def test_line_endings_become_lf_across_reads() -> None:
    lines = LineEndings()
    assert [lines(b"a\r\nb\r"), lines(b"\nc\rd\r"), lines(b"\r\n")] == [b"a\nb\n", b"c\nd\n", b"\n"]


@pytest.mark.parametrize(("event", "data"), [
    (b"data: x", b"x"),
    (b"data:x", b"x"),
    (b"data:  x", b" x"),  # only one space is the separator
    (b": comment\ndata: a\ndata: b", b"a\nb"),
    (b"event: e\nid: 1", None),
    (b"datas: x\ndata: y", b"y"),
])
def test_data_of_follows_the_spec(event: bytes, data: bytes | None) -> None:
    assert data_of(event) == data


def test_with_data_keeps_other_fields() -> None:
    assert with_data(b": c\nevent: e\ndata: a\ndata: b", b"{}") == b"event: e\ndata: {}\n\n"


@pytest.mark.parametrize(("text", "found"), [
    (b'{"usage":{}}', True),
    (b'{"usage" :\n\t {"a": 1}}', True),
    (b'data: {"x": 1, "usage":\ndata: {"a": 1}}', True),  # an object on the next data line
    (b'{"usage":null}', False),
    (b'{"usage": [1]}', False),
    (b'{"x": "usage", "usage": {"a": 1}}', True),
    (b'{"nousage": {}}', False),
])
def test_usage_object_is_seen_past_json_whitespace(text: bytes, found: bool) -> None:
    assert (USAGE_OBJECT.search(text) is not None) is found
