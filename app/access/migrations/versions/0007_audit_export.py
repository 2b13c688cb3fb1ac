"""Audit export batches: which ranges of ``routeiq_audit_log`` are planned for and uploaded to S3.

One row per batch, keyed by ``after_id`` (the batch holds the audit rows with ``after_id <
id <= last_id``). A batch is planned in one transaction before its object is written, so a
replica that takes over after a crash re-exports exactly the same rows under the same
object name (no duplicate, no gap), and two planners can never plan overlapping ranges
(the second one's ``after_id`` conflicts). ``uploaded_at`` is set only after the upload:
the export cursor is the end of the uploaded prefix (``app.audit.batches``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routeiq_audit_export",
        sa.Column("after_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("routeiq_audit_export")
