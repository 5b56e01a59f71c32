"""crm_lead: search and duplicate keys read Traditional characters as Simplified

Revision ID: crm_lead_0006
Revises: crm_lead_0005
Create Date: 2026-12-07

As core_0019 for the core's tables: the keys of the leads whose name or company holds Traditional characters
(``search_name``, ``initials``, ``company_key``) are computed again with ``core.crm.normalise.fold_characters``.
"""

from alembic import op

revision = "crm_lead_0006"
down_revision = "crm_lead_0005"
branch_labels = None
depends_on = None


def upgrade():
    from core.crm.dedup_normalise import name_key
    from core.crm.normalise import initials, search_key
    from core.crm.rekey import refold

    refold(op.get_bind(), "crm_lead_lead", ("name", "company"), {
        "search_name": lambda r: search_key(r[0]),
        "initials": lambda r: initials(r[0]),
        "company_key": lambda r: name_key(r[1]),
    })


def downgrade():
    pass  # the folded keys find what the former ones found, and more
