"""Decision rows record the routing policy's whole distribution, not only the served model's share.

The gate's off-policy estimates are unbiased only where the log could have taken the action
a router takes. With only the served model's propensity, a router that picks a model the
logging policy gave probability 0 (exploration covers a few models) reads as if that answer
scored 0; with the distribution the gate compares two routers on the rows where both of
their actions were possible (``router_models/evaluation/offpolicy.py``). Existing rows keep
NULL: their support is unknown, and the gate treats them as before.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routeiq_decisions", sa.Column("policy", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routeiq_decisions") as batch:  # SQLite: DROP COLUMN through a rebuild if needed
        batch.drop_column("policy")
