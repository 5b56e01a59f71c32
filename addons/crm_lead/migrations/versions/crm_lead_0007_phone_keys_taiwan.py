"""crm_lead: phone numbers of Taiwan, landlines written with +86, Taiwan's places in company names

Revision ID: crm_lead_0007
Revises: crm_lead_0006
Create Date: 2026-12-08

As core_0021 for the core's tables: the leads' ``phone_digits``, ``mobile_key``, ``phone_key`` and
``company_key`` are computed again; the rows whose keys come out differently are written.
"""

from alembic import op

revision = "crm_lead_0007"
down_revision = "crm_lead_0006"
branch_labels = None
depends_on = None


def upgrade():
    from core.crm.dedup_normalise import name_key, phone_key
    from core.crm.normalise import phone_digits
    from core.crm.rekey import phone_region_of, recompute

    bind = op.get_bind()
    region = phone_region_of(bind)
    recompute(bind, "crm_lead_lead", ("company", "mobile", "phone"), {
        "company_key": lambda r: name_key(r[0]),
        "phone_digits": lambda r: phone_digits(r[1] or r[2]),
        "mobile_key": lambda r: phone_key(r[1], region),
        "phone_key": lambda r: phone_key(r[2], region),
    })


def downgrade():
    pass  # the keys find what the former ones found, and more
