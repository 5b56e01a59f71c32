"""core: duplicate rules (查重规则) and normalised match keys

Revision ID: core_0009
Revises: core_0008
Create Date: 2026-11-23

``core_customer`` gains ``name_key``, ``phone_key`` and ``email_key``; ``core_contact`` gains ``mobile_key``
and ``phone_key`` (``email_key`` it has): the match keys of :mod:`core.crm.dedup_normalise`, added in place
(NOT NULL, default ''), filled in batches of 5,000 rows by id range — the keys are computed in Python
(phonenumbers, the name rules), written with one executemany (SQLite) or one ``UPDATE … FROM (VALUES …)``
(PostgreSQL) per batch — and indexed after the backfill.
New tables: ``core_dedup_rule`` (the rules; the defaults are created on first use), ``core_dedup_run`` and
``core_dedup_group`` (the stored results of "Find duplicates").
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0009"
down_revision = "core_0008"
branch_labels = None
depends_on = None

KEY = sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql")
BATCH = 5_000
COLUMNS = {
    "core_customer": ("name_key", "phone_key", "email_key"),
    "core_contact": ("mobile_key", "phone_key"),
}


def _backfill(bind, table: str) -> None:
    """Fill the new key columns of ``table`` in batches of :data:`BATCH` rows by id range."""
    from core.crm.dedup_normalise import email_key, name_key, phone_key

    if table == "core_customer":
        read = "SELECT id, name, phone, email FROM core_customer WHERE id > :after ORDER BY id LIMIT :n"
        columns = ("name_key", "phone_key", "email_key")

        def keys(row):
            return (row[0], name_key(row[1]), phone_key(row[2]), email_key(row[3]))
    else:
        read = "SELECT id, mobile, phone FROM core_contact WHERE id > :after ORDER BY id LIMIT :n"
        columns = ("mobile_key", "phone_key")

        def keys(row):
            return (row[0], phone_key(row[1]), phone_key(row[2]))

    after = 0
    while True:
        rows = bind.execute(sa.text(read), {"after": after, "n": BATCH}).all()
        if not rows:
            return
        values = [v for v in map(keys, rows) if any(v[1:])]
        if values:
            _write(bind, table, columns, values)
        after = rows[-1][0]


def _write(bind, table: str, columns: tuple, values: list[tuple]) -> None:
    from core.crm.rekey import write

    write(bind, table, columns, values)


def upgrade():
    bind = op.get_bind()
    for table, columns in COLUMNS.items():
        for column in columns:
            op.add_column(table, sa.Column(column, KEY, nullable=False, server_default=""))
        _backfill(bind, table)
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])

    op.create_table(
        "core_dedup_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("strip_region", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_dedup_rule")),
    )
    op.create_index("ix_core_dedup_rule_object_sort", "core_dedup_rule", ["object", "sort"])
    op.create_table(
        "core_dedup_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], name=op.f("fk_core_dedup_run_user_id_core_user"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_dedup_run")),
    )
    op.create_index("ix_core_dedup_run_object_id", "core_dedup_run", ["object", "id"])
    op.create_table(
        "core_dedup_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.Column("rule_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["core_dedup_run.id"], name=op.f("fk_core_dedup_group_run_id_core_dedup_run"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_dedup_group")),
    )
    op.create_index("ix_core_dedup_group_run_id_score_id", "core_dedup_group", ["run_id", "score", "id"])


def downgrade():
    op.drop_index("ix_core_dedup_group_run_id_score_id", table_name="core_dedup_group")
    op.drop_table("core_dedup_group")
    op.drop_index("ix_core_dedup_run_object_id", table_name="core_dedup_run")
    op.drop_table("core_dedup_run")
    op.drop_index("ix_core_dedup_rule_object_sort", table_name="core_dedup_rule")
    op.drop_table("core_dedup_rule")
    for table, columns in COLUMNS.items():
        for column in columns:
            op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_column(column)
