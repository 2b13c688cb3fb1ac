"""The access tables, as SQLAlchemy Core (no ORM: the store builds plain statements).

The schema itself is created and changed only by the alembic migrations in
``migrations/``; these definitions must match them. ``spend_logs`` holds one row per
request; ``spend_minutes`` holds aggregates per (minute, key, model), written once a
second per replica, so no request ever waits on a per-key row lock. ``decisions`` is
the routing decision log (``app.access.decision_log``): one row per routed request.
``request_minutes`` counts every finished request per (minute, model, endpoint,
status), with a fixed-bucket latency histogram (``app.access.request_stats``).
``audit_export`` records the audit log's export batches to S3 (``app.audit``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from app.access.latency_histogram import COLUMNS

metadata = MetaData()
TS = DateTime(timezone=True)


def _budget_and_limits() -> list[Column[Any]]:
    """The columns a team and a key both carry, in this order in both tables: what the policy
    checks for either the same way (allowed models, budget and its window, RPM/TPM limits).
    New ``Column`` objects each call: a column belongs to one table."""
    return [
        Column("models", JSON),
        Column("max_budget", Float),
        Column("budget_duration", String(16)),
        Column("budget_anchor", TS, nullable=False),
        Column("rpm_limit", Integer),
        Column("tpm_limit", BigInteger),
    ]


teams = Table(
    "routeiq_teams",
    metadata,
    Column("team_id", String(64), primary_key=True),
    Column("team_alias", String(256)),
    *_budget_and_limits(),
    Column("metadata", JSON),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

keys = Table(
    "routeiq_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(16), nullable=False),
    Column("key_alias", String(256)),
    Column("team_id", String(64), index=True),
    *_budget_and_limits(),
    Column("expires_at", TS),
    Column("metadata", JSON),
    Column("admin", Boolean, nullable=False, default=False),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_by", String(64)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("user_id", String(256), index=True),
    Column("tags", JSON),
    Column("soft_budget", Float),
    Column("max_parallel_requests", Integer),
    Column("model_max_budget", JSON),
    Column("model_rpm_limit", JSON),
    Column("model_tpm_limit", JSON),
)

spend_logs = Table(
    "routeiq_spend_logs",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("request_id", String(128), nullable=False, index=True),
    Column("key_id", String(64), nullable=False),
    Column("team_id", String(64)),
    Column("model", String(256), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("user_id", String(256), index=True),
)

spend_minutes = Table(
    "routeiq_spend_minutes",
    metadata,
    Column("minute", TS, primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("model", String(256), primary_key=True),
    Column("team_id", String(64)),
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost", Float, nullable=False),
)

request_minutes = Table(
    "routeiq_request_minutes",
    metadata,
    Column("minute", TS, primary_key=True),
    Column("model", String(256), primary_key=True),
    Column("endpoint", String(64), primary_key=True),
    Column("status", Integer, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("latency_ms_sum", Float, nullable=False),
    *[Column(name, BigInteger, nullable=False, server_default="0") for name in COLUMNS],
)

audit_log = Table(
    "routeiq_audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("created_at", TS, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
    Column("outcome", String(32), nullable=False),
    Column("detail", JSON),
)

audit_export = Table(
    "routeiq_audit_export",
    metadata,
    Column("after_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("last_id", BigInteger, nullable=False, unique=True),
    Column("rows", Integer, nullable=False),
    Column("object_key", String(1024), nullable=False),
    Column("planned_at", TS, nullable=False),
    Column("uploaded_at", TS),
)

decisions = Table(
    "routeiq_decisions",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("created_at", TS, nullable=False),
    Column("key_id", String(64), primary_key=True),
    Column("router", String(256), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("lam", Float),
    Column("query", Text),
    Column("query_sha256", String(64), nullable=False),
    Column("query_chars", Integer, nullable=False),
    Column("candidates", JSON, nullable=False),
    Column("chosen", String(256), nullable=False),
    Column("routed_to", String(256), nullable=False),
    Column("route_latency_ms", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("fallback", Boolean, nullable=False),
    Column("feedback", Float),
    Column("feedback_at", TS),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("propensity", Float),
    Column("explored", Boolean, nullable=False, default=False),
    Column("policy", JSON),
)
