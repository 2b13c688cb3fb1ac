"""Structured, redacted logs for every replica: one JSON object a line, secrets removed.

Each deployment constructor calls ``setup_logging`` once. It adds one handler on the
root logger (JSON or text on the process's stderr, fd 2, which Ray writes to the
worker's ``.err`` file under ``/tmp/ray/session_latest/logs/``; ``RAY_LOG_TO_STDERR=1``
sends it to the container's stderr) and leaves Ray's own handlers alone: the
``ray.serve`` logger keeps its replica files under ``logs/serve/``.

Redaction happens when a record is *created* (a wrapped ``LogRecordFactory``), so it
holds for every handler in the process, Ray's included, and for tracebacks: API keys
(``sk-...``), ``Authorization``/bearer values, ``?key=``-style URL parameters,
passwords in URLs and the literal secrets of the config (master key, provider keys).
``request_id`` comes from ``REQUEST_ID``, a contextvar the ingress sets from
``x-request-id``. Must not: import Ray, remove or reformat Ray's handlers, or log at
import time.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from app.config import ConfigError, GatewayConfig, ModelEntry, ProviderSettings, resolve_secret

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("routeiq_request_id", default=None)
MASK = "***"
_MIN_LITERAL = 5
"""Shorter config values are not treated as secrets (they would mask ordinary words)."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host → scheme://user:***@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+@"), rf"\1{MASK}@"),
    # Authorization: Bearer x / authorization=x / 'authorization': 'x'
    (re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;}]+"),
     rf"\1{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+"), rf"\1{MASK}"),
    # api_key='x', x-api-key: x, "api-key": "x", password=x, secret: x
    (re.compile(r"(?i)((?:x-)?(?:api[-_]?key|password|passwd|secret|access[-_]?token)[\"']?\s*[:=]\s*[\"']?)"
                r"[^\s\"',;}&]+"), rf"\1{MASK}"),
    # URL parameters: ?key=x&token=y
    (re.compile(r"(?i)([?&](?:key|api[-_]?key|token|access_token|auth|sig|signature|password|secret)=)[^&\s\"'#]+"),
     rf"\1{MASK}"),
    # OpenAI-style keys anywhere (virtual keys are sk- + 43 base64url characters)
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{3,}"), f"sk-{MASK}"),
)


class Redactor(logging.Filter):
    """Rewrites a record's message (its args merged in) and traceback without secrets."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        super().__init__()
        self.set_literals(literals)

    def set_literals(self, literals: Iterable[str]) -> None:
        kept = sorted({s for s in literals if s and len(s) >= _MIN_LITERAL}, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, kept))) if kept else None

    def redact(self, text: str) -> str:
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_routeiq_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a bad format string: keep the template, drop the args)
            message = str(record.msg)
        record.msg, record.args = self.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._routeiq_redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp, level, logger, message, request_id, component (+ exc_info)."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id_of(record):
            out["request_id"] = rid
        out["component"] = self.component
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc_info"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(component)s %(rid)s] %(message)s")
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        record.component, record.rid = self.component, request_id_of(record) or "-"
        return super().format(record)


def request_id_of(record: logging.LogRecord) -> str | None:
    """The record's ``request_id`` (``extra=`` or Serve's filter), else the contextvar's."""
    return getattr(record, "request_id", None) or REQUEST_ID.get()


def config_secrets(cfg: GatewayConfig | ProviderSettings) -> list[str]:
    """Literal secret values of a config (or a provider's slice of it): master key,
    provider keys and credentials, database and Redis URLs."""
    found: list[str] = []

    def add(value: Any) -> None:
        try:
            resolved = resolve_secret(value) if isinstance(value, str) else None
        except ConfigError:
            return
        if resolved:
            found.append(resolved)

    entries: Iterable[ModelEntry] = cfg.entries.values() if isinstance(cfg, ProviderSettings) else cfg.model_list
    for entry in entries:
        params = entry.litellm_params.model_dump()
        for name, value in params.items():
            if any(w in name.lower() for w in ("key", "secret", "token", "password", "credential")):
                add(value)
    if isinstance(cfg, GatewayConfig):
        with contextlib.suppress(ConfigError):
            found.append(cfg.master_key())
        for url in (cfg.general_settings.database_url, cfg.general_settings.redis_url):
            add(url)
    return found


_lock = threading.Lock()
_redactor = Redactor()
_handler: logging.Handler | None = None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the process's real stderr (fd 2), not to ``sys.stderr``: with
    ``RAY_SERVE_LOG_TO_STDERR=0`` (implied by ``RAY_SERVE_THROUGHPUT_OPTIMIZED``) Serve
    replaces ``sys.stderr`` with its own logger, which wraps each line in its format and
    buffers up to 1,000 records before writing them."""

    def __init__(self) -> None:
        super().__init__(sys.__stderr__ or sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.__stderr__ or sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return None


def _install_factory() -> None:
    base = logging.getLogRecordFactory()
    if getattr(base, "_routeiq", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        _redactor.filter(record)
        return record

    factory._routeiq = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def setup_logging(
    component: str, cfg: GatewayConfig | ProviderSettings | None = None, *, stream: Any = None
) -> logging.Handler:
    """Install redaction and the JSON (or text) handler in this process; idempotent.

    ``cfg`` is the whole config (ingress) or a provider's slice of it. Without one (the
    router-scoring replica gets no config) the format comes from ``ROUTEIQ_LOG_FORMAT``
    (default ``json``) and only the patterns redact.
    """
    global _handler  # noqa: PLW0603  (one handler per process, replaced on re-setup)
    settings = cfg.general_settings if isinstance(cfg, GatewayConfig) else cfg
    fmt = settings.log_format if settings else os.environ.get("ROUTEIQ_LOG_FORMAT", "json")
    level = settings.log_level if settings else os.environ.get("ROUTEIQ_LOG_LEVEL", "INFO")
    with _lock:
        _redactor.set_literals(config_secrets(cfg) if cfg is not None else ())
        _install_factory()
        root = logging.getLogger()
        if _handler is not None:
            root.removeHandler(_handler)
        handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
        handler.setFormatter(JsonFormatter(component) if fmt == "json" else TextFormatter(component))
        handler.addFilter(_redactor)  # records made before the factory was installed
        root.addHandler(handler)
        logging.getLogger("routeiq").setLevel(level)
        _handler = handler
        return handler
