"""Per-minute request counts and latency histograms of every request the ingress finished.

One row per (minute, model, endpoint, status), written every few seconds per replica by
``app.access.request_stats``: a flush adds its counts to the row (upsert-add), so rows of
several replicas merge. ``b00..b34`` count the requests per fixed latency bucket
(``app.access.latency_histogram``): fixed bounds are what makes the counts addable.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

N_BUCKETS = 35
"""``latency_histogram.N_BUCKETS`` when this revision was written (a migration never changes)."""


def upgrade() -> None:
    op.create_table(
        "routeiq_request_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("model", sa.String(256), primary_key=True),
        sa.Column("endpoint", sa.String(64), primary_key=True),
        sa.Column("status", sa.Integer(), primary_key=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        *[sa.Column(f"b{i:02d}", sa.BigInteger(), nullable=False, server_default="0") for i in range(N_BUCKETS)],
    )


def downgrade() -> None:
    op.drop_table("routeiq_request_minutes")
