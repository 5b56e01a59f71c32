"""core: search and duplicate keys read Traditional characters as Simplified

Revision ID: core_0019
Revises: core_0018
Create Date: 2026-12-07

``core.crm.normalise.fold_characters`` now folds Traditional characters into Simplified ones, and drops invisible
format characters (zero-width spaces, soft hyphens, direction marks), in the keys that search and duplicate rules
compare (``search_name``, ``initials``, ``name_key``): 上海華 finds 上海华, 「臺灣某某科技」 is a likely duplicate of
「台湾某某科技」, and "Acme\u200b Widgets" no longer slips past a blocking rule on "Acme Widgets". The keys of the
rows whose names hold such characters are computed again (the others are only read); names are never changed.
"""

from alembic import op

revision = "core_0019"
down_revision = "core_0018"
branch_labels = None
depends_on = None


def upgrade():
    from core.crm.dedup_normalise import name_key
    from core.crm.normalise import initials, search_key
    from core.crm.rekey import refold

    bind = op.get_bind()
    for table in ("core_customer", "core_contact"):
        keys = {"search_name": lambda r: search_key(r[0]), "initials": lambda r: initials(r[0])}
        if table == "core_customer":
            keys["name_key"] = lambda r: name_key(r[0])
        refold(bind, table, ("name",), keys)
    refold(bind, "core_product", ("name",), {"search_name": lambda r: search_key(r[0])})


def downgrade():
    pass  # the folded keys find what the former ones found, and more
