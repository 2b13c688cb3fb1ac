"""Spend rows and decision rows say whether their tokens were estimated.

An upstream that reports no usage (or a stream cut before its usage event) is charged
an estimate (``app.providers.estimate``); ``usage_estimated`` marks those rows, so
reports and retraining can tell counted tokens from guessed ones. Existing rows are
counted ones (false).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("routeiq_spend_logs", "routeiq_decisions")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("usage_estimated", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:  # SQLite: DROP COLUMN through a rebuild if needed
            batch.drop_column("usage_estimated")
