"""example_notes: the note table

Revision ID: example_notes_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "example_notes_0001"
down_revision = None
branch_labels = ("example_notes",)
depends_on = ("core_0001",)


def upgrade():
    op.create_table(
        "example_notes_note",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("author_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["core_user.id"], name="fk_example_notes_note_author_id_core_user"),
        sa.PrimaryKeyConstraint("id", name="pk_example_notes_note"),
    )


def downgrade():
    op.drop_table("example_notes_note")
