"""core: the owners of a recycle bin entry holding records of several owners

Revision ID: core_0020
Revises: core_0019
Create Date: 2026-12-08

``core_recycle_bin_owner`` (entry, owner): every owner of the records of an entry that holds records of several
owners — a merge, one undoable unit (a deletion now makes one entry per owner). Only those who may see all of
these owners' records see such an entry (``core.crm.recycle.visible_entries``): it showed, and let restore, every
record to the users of its first record's owner alone. Filled for the entries already in the bin from the
records they hold (the first group of their snapshot, ``owner_id``); an entry of one owner gets no row.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0020"
down_revision = "core_0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_recycle_bin_owner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["core_recycle_bin.id"],
                                name=op.f("fk_core_recycle_bin_owner_entry_id_core_recycle_bin"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["core_user.id"],
                                name=op.f("fk_core_recycle_bin_owner_owner_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_recycle_bin_owner")),
    )
    op.create_index("ix_core_recycle_bin_owner_entry_id_owner_id", "core_recycle_bin_owner",
                    ["entry_id", "owner_id"], unique=True)
    bind = op.get_bind()
    entries = sa.table("core_recycle_bin", sa.column("id", sa.Integer()), sa.column("count", sa.Integer()),
                       sa.column("payload", sa.JSON()))
    users = set(bind.execute(sa.text("SELECT id FROM core_user")).scalars())
    rows = []
    for entry_id, payload in bind.execute(sa.select(entries.c.id, entries.c.payload).where(entries.c.count > 1)):
        groups = (payload or {}).get("groups") if isinstance(payload, dict) else None
        first = groups[0] if isinstance(groups, list) and groups and isinstance(groups[0], dict) else {}
        records = [r for r in first.get("rows") or () if isinstance(r, dict) and "owner_id" in r]
        owners = {r["owner_id"] if r["owner_id"] in users else None for r in records}
        if first.get("column") == "id" and len(owners) > 1:
            rows += [{"entry_id": entry_id, "owner_id": owner} for owner in sorted(owners, key=lambda o: o or 0)]
    if rows:
        owners_table = sa.table("core_recycle_bin_owner", sa.column("entry_id", sa.Integer()),
                                sa.column("owner_id", sa.Integer()))
        op.bulk_insert(owners_table, rows)


def downgrade():
    op.drop_index("ix_core_recycle_bin_owner_entry_id_owner_id", table_name="core_recycle_bin_owner")
    op.drop_table("core_recycle_bin_owner")
