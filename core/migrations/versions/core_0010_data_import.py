"""core: import batches (导入)

Revision ID: core_0010
Revises: core_0009
Create Date: 2026-11-23

``core_import_batch``: one row per uploaded file (name, object, mode, key, column mapping, status,
progress, counts, the user, times); the file itself is stored under the instance folder.
``core_import_mapping``: the column mapping a user chose for a set of headers, offered next time.
``core_import_change``: what a batch created (ranges of ids) and updated (one row per record with the old
values), so that an import can be undone. ``core_customer`` gains ``external_id`` (the customer's id in
another system, a key for re-imports), added in place: no table rebuild, fast on 1,000,000 rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0010"
down_revision = "core_0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_import_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=False),
        sa.Column("delimiter", sa.String(length=4), nullable=False),
        sa.Column("header", sa.JSON(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("key_field", sa.String(length=64), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("contacts_created", sa.Integer(), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("audit_batch", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], name=op.f("fk_core_import_batch_user_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_import_batch")),
    )
    op.create_index("ix_core_import_batch_user_id_id", "core_import_batch", ["user_id", "id"])
    op.create_table(
        "core_import_mapping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("header_key", sa.String(length=64), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], name=op.f("fk_core_import_mapping_user_id_core_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_import_mapping")),
        sa.UniqueConstraint("user_id", "object", "header_key", name="uq_core_import_mapping_user_id_object_header_key"),
    )
    op.create_table(
        "core_import_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("old_values", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["core_import_batch.id"],
                                name=op.f("fk_core_import_change_batch_id_core_import_batch"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_import_change")),
    )
    op.create_index("ix_core_import_change_batch_id", "core_import_change", ["batch_id"])
    op.add_column("core_customer", sa.Column("external_id", sa.String(length=64), nullable=True))
    op.create_index("ix_core_customer_external_id", "core_customer", ["external_id"])


def downgrade():
    op.drop_index("ix_core_customer_external_id", table_name="core_customer")
    with op.batch_alter_table("core_customer", schema=None) as batch_op:
        batch_op.drop_column("external_id")
    op.drop_index("ix_core_import_change_batch_id", table_name="core_import_change")
    op.drop_table("core_import_change")
    op.drop_table("core_import_mapping")
    op.drop_index("ix_core_import_batch_user_id_id", table_name="core_import_batch")
    op.drop_table("core_import_batch")
