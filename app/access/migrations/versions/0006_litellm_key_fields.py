"""Keys take LiteLLM proxy's admin fields; spend rows say whose (``user_id``) they are.

``user_id`` and ``tags`` are stored and filterable (``/key/list``, ``/spend/logs``);
``soft_budget`` drives the alert hook (``app.access.soft_budget``); ``max_parallel_requests``,
``model_max_budget``, ``model_rpm_limit`` and ``model_tpm_limit`` are enforced by the
limiter (``app.access.policy``). A spend row copies its key's ``user_id`` at settlement, so
a key later moved to another user keeps its history under the user who spent it.
Existing rows get NULL: no user, no tags, no such limits.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY_COLUMNS = (
    ("user_id", sa.String(256)), ("tags", sa.JSON()), ("soft_budget", sa.Float()),
    ("max_parallel_requests", sa.Integer()), ("model_max_budget", sa.JSON()),
    ("model_rpm_limit", sa.JSON()), ("model_tpm_limit", sa.JSON()),
)


def upgrade() -> None:
    for name, kind in KEY_COLUMNS:
        op.add_column("routeiq_keys", sa.Column(name, kind, nullable=True))
    op.create_index("ix_routeiq_keys_user_id", "routeiq_keys", ["user_id"])
    op.add_column("routeiq_spend_logs", sa.Column("user_id", sa.String(256), nullable=True))
    op.create_index("ix_routeiq_spend_logs_user_id", "routeiq_spend_logs", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_routeiq_spend_logs_user_id", "routeiq_spend_logs")
    op.drop_index("ix_routeiq_keys_user_id", "routeiq_keys")
    with op.batch_alter_table("routeiq_spend_logs") as batch:
        batch.drop_column("user_id")
    with op.batch_alter_table("routeiq_keys") as batch:
        for name, _ in reversed(KEY_COLUMNS):
            batch.drop_column(name)
