"""What the request path measures, behind a protocol so ``app/`` stays free of Ray.

``NoMetrics`` is the default (tests, plain FastAPI); the ingress deployment plugs in
``deployments.metrics.ServeMetrics``, which exports through ``ray.serve.metrics`` on
Ray's Prometheus endpoint. Calls are cheap and never raise. ``RequestRecorder`` is
the database's counterpart of ``request_done`` (``app.access.request_stats``: counts and
latency per minute and model, for the console), wired where there is a database.
"""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    def request_done(self, *, endpoint: str, model: str, status: int, strategy: str, seconds: float) -> None: ...

    def first_token(self, *, model: str, seconds: float) -> None: ...

    def usage(self, *, model: str, prompt_tokens: int, completion_tokens: int, cost: float) -> None: ...

    def routed(self, *, router: str, strategy: str, model: str, seconds: float) -> None: ...

    def fallback(self, *, from_model: str, to_model: str) -> None: ...

    def router_fallback(self, *, router: str, reason: str) -> None:
        """A routed request fell back to the router's fallback model (reason: deadline,
        unavailable, undecided, error)."""
        ...

    def cooldown(self, *, model: str) -> None: ...

    def rejected(self, *, reason: str) -> None: ...

    def soft_budget_alert(self) -> None:
        """A key's spend crossed its ``soft_budget`` (once per key and budget window)."""
        ...

    def load(self, *, inflight: int, active_streams: int) -> None: ...

    def config_version(self, *, seq: int) -> None:
        """The config version this replica serves (the record's sequence number, app.config_sync)."""
        ...

    def config_sync_error(self, *, reason: str) -> None:
        """A config sync round failed (source, invalid, redis, update, error)."""
        ...

    def credential_reload_error(self, *, store: str) -> None:
        """A rotated credential (``database``, ``redis``, ``audit_s3``) was refused; the old one serves."""
        ...

    def audit_export(self, *, lag_s: float, spool_batches: int, spool_bytes: int) -> None:
        """The audit export's state: age of the oldest row not in S3 yet (0: none), the spool."""
        ...


class RequestRecorder(Protocol):
    """Counts every finished request; ``start``/``close`` run with the replica."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def record(self, *, endpoint: str, model: str, status: int, seconds: float, at: float | None = None) -> None:
        """Count one request; never blocks, never raises."""
        ...


class NoRequestRecorder:
    """Counts nothing (no database)."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def record(self, *, endpoint: str, model: str, status: int, seconds: float, at: float | None = None) -> None:
        return None


class NoMetrics:
    """Measures nothing."""

    def request_done(self, *, endpoint: str, model: str, status: int, strategy: str, seconds: float) -> None:
        return None

    def first_token(self, *, model: str, seconds: float) -> None:
        return None

    def usage(self, *, model: str, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        return None

    def routed(self, *, router: str, strategy: str, model: str, seconds: float) -> None:
        return None

    def fallback(self, *, from_model: str, to_model: str) -> None:
        return None

    def router_fallback(self, *, router: str, reason: str) -> None:
        return None

    def cooldown(self, *, model: str) -> None:
        return None

    def rejected(self, *, reason: str) -> None:
        return None

    def soft_budget_alert(self) -> None:
        return None

    def load(self, *, inflight: int, active_streams: int) -> None:
        return None

    def config_version(self, *, seq: int) -> None:
        return None

    def config_sync_error(self, *, reason: str) -> None:
        return None

    def credential_reload_error(self, *, store: str) -> None:
        return None

    def audit_export(self, *, lag_s: float, spool_batches: int, spool_bytes: int) -> None:
        return None
