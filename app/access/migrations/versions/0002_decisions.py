"""Routing decision log: one row per routed request (query, candidates, choice, outcome, feedback).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "routeiq_decisions",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("router", sa.String(256), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("lam", sa.Float),
        sa.Column("query", sa.Text),
        sa.Column("query_sha256", sa.String(64), nullable=False),
        sa.Column("query_chars", sa.Integer, nullable=False),
        sa.Column("candidates", sa.JSON, nullable=False),
        sa.Column("chosen", sa.String(256), nullable=False),
        sa.Column("routed_to", sa.String(256), nullable=False),
        sa.Column("route_latency_ms", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.Column("feedback", sa.Float),
        sa.Column("feedback_at", TS),
    )
    # The export reads by time; the training loop wants rows with feedback.
    op.create_index("ix_routeiq_decisions_time", "routeiq_decisions", ["created_at"])
    op.create_index("ix_routeiq_decisions_key_time", "routeiq_decisions", ["key_id", "created_at"])


def downgrade() -> None:
    op.drop_table("routeiq_decisions")
