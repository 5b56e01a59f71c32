"""Alembic environment: Mosaic always runs migrations on a connection it passes in.

The version locations are the core's and every discovered addon's ``migrations/versions`` folder; each
addon is its own branch (``branch_labels = ("<addon>",)``), see :mod:`core.migrate`.
"""

from alembic import context

from core.extensions import db

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=db.metadata,
    render_as_batch=True,  # SQLite needs batch mode to alter tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
