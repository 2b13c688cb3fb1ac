"""Decision rows record the routing policy's propensity and whether the pick was explored.

Exploration (``router_settings.routers[].exploration``) serves some routed requests with
a model other than the router's best guess; off-policy estimates and propensity-weighted
retraining need the probability with which the served model was chosen. Existing rows
predate exploration: their propensity is unknown (NULL) and none was explored.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routeiq_decisions", sa.Column("propensity", sa.Float(), nullable=True))
    op.add_column("routeiq_decisions", sa.Column("explored", sa.Boolean(), nullable=False,
                                                 server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("routeiq_decisions") as batch:  # SQLite: DROP COLUMN through a rebuild if needed
        batch.drop_column("explored")
        batch.drop_column("propensity")
