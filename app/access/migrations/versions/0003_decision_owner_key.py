"""Decision rows are keyed by (request id, key id), not by the request id alone.

A client chooses its ``x-request-id``: with the request id as the only key, a key that
learned another key's request id could send a request with it, claim the decision row
(the other's was then dropped as a duplicate) and rate it. Keyed by both, each key's
rows are its own whatever id it sends.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "routeiq_decisions"
PK = "routeiq_decisions_pkey"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PK, TABLE, type_="primary")
        op.create_primary_key(PK, TABLE, ["request_id", "key_id"])
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:  # SQLite: the table is rebuilt
        batch.create_primary_key(PK, ["request_id", "key_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PK, TABLE, type_="primary")
        op.create_primary_key(PK, TABLE, ["request_id"])
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.create_primary_key(PK, ["request_id"])
