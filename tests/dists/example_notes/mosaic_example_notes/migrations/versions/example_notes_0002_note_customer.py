"""example_notes: a note may be about a customer

Revision ID: example_notes_0002
Revises: example_notes_0001
Create Date: 2026-11-23

Shows an addon's records that depend on a core record: they follow the customer into the recycle bin and
back (``recycle_dependents``) and move to the survivor of a merge (``merge_records``).
"""

import sqlalchemy as sa
from alembic import op

revision = "example_notes_0002"
down_revision = "example_notes_0001"
branch_labels = None
depends_on = ("core_0003",)


def upgrade():
    with op.batch_alter_table("example_notes_note") as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.create_index("ix_example_notes_note_customer_id", ["customer_id"])
        batch.create_foreign_key("fk_example_notes_note_customer_id_core_customer", "core_customer",
                                 ["customer_id"], ["id"])


def downgrade():
    with op.batch_alter_table("example_notes_note") as batch:
        batch.drop_constraint("fk_example_notes_note_customer_id_core_customer", type_="foreignkey")
        batch.drop_index("ix_example_notes_note_customer_id")
        batch.drop_column("customer_id")
