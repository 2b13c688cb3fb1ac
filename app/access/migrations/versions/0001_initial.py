"""Initial access schema: keys, teams, spend (per request and per minute), audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _limits() -> list[sa.Column[Any]]:
    return [
        sa.Column("models", sa.JSON),
        sa.Column("max_budget", sa.Float),
        sa.Column("budget_duration", sa.String(16)),
        sa.Column("budget_anchor", TS, nullable=False),
        sa.Column("rpm_limit", sa.Integer),
        sa.Column("tpm_limit", sa.BigInteger),
    ]


def upgrade() -> None:
    op.create_table(
        "routeiq_teams",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("team_alias", sa.String(256)),
        *_limits(),
        sa.Column("metadata", sa.JSON),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "routeiq_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_hint", sa.String(16), nullable=False),
        sa.Column("key_alias", sa.String(256)),
        sa.Column("team_id", sa.String(64), index=True),
        *_limits(),
        sa.Column("expires_at", TS),
        sa.Column("metadata", sa.JSON),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "routeiq_spend_logs",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False, index=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64)),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("total_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_routeiq_spend_logs_key_time", "routeiq_spend_logs", ["key_id", "created_at"])
    op.create_index("ix_routeiq_spend_logs_team_time", "routeiq_spend_logs", ["team_id", "created_at"])
    op.create_table(
        "routeiq_spend_minutes",
        sa.Column("minute", TS, primary_key=True),
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(256), primary_key=True),
        sa.Column("team_id", sa.String(64)),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
    )
    op.create_index("ix_routeiq_spend_minutes_team", "routeiq_spend_minutes", ["team_id", "minute"])
    op.create_table(
        "routeiq_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_routeiq_audit_log_time", "routeiq_audit_log", ["created_at"])


def downgrade() -> None:
    for table in ("routeiq_audit_log", "routeiq_spend_minutes", "routeiq_spend_logs", "routeiq_keys", "routeiq_teams"):
        op.drop_table(table)
