"""crm_marketing: start of the addon's migration branch

Revision ID: crm_marketing_0001
Revises:
Create Date: 2026-11-23
"""

revision = "crm_marketing_0001"
down_revision = None
branch_labels = ("crm_marketing",)
depends_on = ('core_0001', 'crm_lead_0001')


def upgrade():
    pass


def downgrade():
    pass
