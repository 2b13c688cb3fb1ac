"""Replica logs: one JSON object a line with the request id, and no secret in any form."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app import logs
from app.config import parse_config
from devtools.configs import gateway_config

MASTER = "sk-test-master"
PROVIDER = "prov-7c1e9d0a55f2"
VIRTUAL = "sk-" + "Ab3_x-" * 7 + "Q"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    cfg = gateway_config("http://127.0.0.1:9/v1", database_url="postgresql://app:pg-Pa55word@db:5432/routeiq")
    cfg["model_list"][0]["litellm_params"]["api_key"] = PROVIDER
    cfg["model_list"][1]["litellm_params"]["aws_secret_access_key"] = "AWS/secret+Key123"
    buf = io.StringIO()
    factory = logging.getLogRecordFactory()
    handler = logs.setup_logging("test", parse_config(cfg), stream=buf)
    yield buf
    logging.getLogger().removeHandler(handler)
    logging.setLogRecordFactory(factory)  # the rest of the session logs unredacted, as before


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(x) for x in buf.getvalue().splitlines()]


@pytest.mark.parametrize(("message", "secret"), [
    (f"key {VIRTUAL} refused", VIRTUAL[3:]),
    (f"master {MASTER}", MASTER),
    (f"headers {{'Authorization': 'Bearer {VIRTUAL}'}}", VIRTUAL[3:]),
    ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("calling with bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
    (f"upstream said: invalid api key {PROVIDER}", PROVIDER),
    ("GET https://generativelanguage.googleapis.com/v1/models?key=AIzaSyD-xyz123&alt=sse", "AIzaSyD-xyz123"),
    ("connect postgresql://app:pg-Pa55word@db:5432/routeiq failed", "pg-Pa55word"),
    ("redis at rediss://:r3dis-pw@cache:6380/0 is down", "r3dis-pw"),
    ("litellm kwargs api_key='sk-proj-abcdef123456' x-api-key: hunter22", "hunter22"),
    ("kwargs {'aws_secret_access_key': 'AWS/secret+Key123'}", "AWS/secret+Key123"),
])
def test_every_secret_form_is_redacted(stream: io.StringIO, message: str, secret: str) -> None:
    logging.getLogger("routeiq.test").warning(message)
    out = stream.getvalue()
    assert secret not in out and logs.MASK in out


def test_args_and_tracebacks_are_redacted(stream: io.StringIO) -> None:
    log = logging.getLogger("routeiq.test")
    log.info("key %s for %s", VIRTUAL, "team-a")
    try:
        raise RuntimeError(f"provider rejected {PROVIDER}")
    except RuntimeError:
        log.exception("call failed with Authorization: Bearer %s", MASTER)
    text = stream.getvalue()
    assert VIRTUAL[3:] not in text and PROVIDER not in text and MASTER not in text
    first, second = lines(stream)
    assert first["message"] == "key sk-*** for team-a"
    assert "RuntimeError" in str(second["exc_info"])


def test_other_handlers_get_redacted_records_too(stream: io.StringIO) -> None:
    other = io.StringIO()
    handler = logging.StreamHandler(other)  # e.g. Ray's own file handler
    lib = logging.getLogger("some.library")
    lib.addHandler(handler)
    try:
        lib.warning("retrying with %s", MASTER)
    finally:
        lib.removeHandler(handler)
    assert MASTER not in other.getvalue() and logs.MASK in other.getvalue()


def test_json_lines_carry_the_request_id(stream: io.StringIO) -> None:
    log = logging.getLogger("routeiq.test")
    log.info("before any request")
    token = logs.REQUEST_ID.set("req-abc")
    try:
        log.info("inside a request")
        log.warning("explicit id", extra={"request_id": "req-explicit"})
    finally:
        logs.REQUEST_ID.reset(token)
    outside, inside, explicit = lines(stream)
    assert "request_id" not in outside
    assert inside["request_id"] == "req-abc" and explicit["request_id"] == "req-explicit"
    assert set(inside) == {"timestamp", "level", "logger", "message", "request_id", "component"}
    assert (inside["level"], inside["logger"], inside["component"]) == ("INFO", "routeiq.test", "test")


def test_text_format() -> None:
    buf = io.StringIO()
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", log_format="text"))
    factory = logging.getLogRecordFactory()
    handler = logs.setup_logging("ingress", cfg, stream=buf)
    try:
        token = logs.REQUEST_ID.set("req-1")
        logging.getLogger("routeiq.test").warning("plain %s", MASTER)
        logs.REQUEST_ID.reset(token)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.setLogRecordFactory(factory)
    line = buf.getvalue().strip()
    assert "WARNING routeiq.test [ingress req-1] plain ***" in line and not line.startswith("{")
