"""Alembic environment: runs on the connection ``app.access.migrate`` hands it.

It never builds its own engine or reads a URL: the caller has already taken the
migration lock on that connection (a Postgres advisory lock, or a file lock for
SQLite), so concurrent replica starts apply each revision exactly once.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table="routeiq_access_schema_version",  # not `alembic_version`: other components may use alembic
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
