"""crm_lead: indexes of the follow-up reminders and the lead list

Revision ID: crm_lead_0005
Revises: crm_lead_0004
Create Date: 2026-11-23

The reminders ("not contacted for N days", the visit frequency) compare when a lead was last touched —
``COALESCE(last_contacted_at, created_at)``: a lead never contacted counts from its creation — so that
expression is indexed, per owner (a rep's and a manager's reminders) and overall (scope "all"); the lead
list sorted by last contact overall gets ``(last_contacted_at, id)``.
"""

import sqlalchemy as sa
from alembic import op

revision = "crm_lead_0005"
down_revision = "crm_lead_0004"
branch_labels = None
depends_on = None

TOUCHED = "coalesce(last_contacted_at, created_at)"


def upgrade():
    op.create_index("ix_crm_lead_lead_owner_id_touched_id", "crm_lead_lead",
                    ["owner_id", sa.text(TOUCHED), "id"])
    op.create_index("ix_crm_lead_lead_touched_id", "crm_lead_lead", [sa.text(TOUCHED), "id"])
    op.create_index("ix_crm_lead_lead_last_contacted_at_id", "crm_lead_lead", ["last_contacted_at", "id"])


def downgrade():
    op.drop_index("ix_crm_lead_lead_last_contacted_at_id", table_name="crm_lead_lead")
    op.drop_index("ix_crm_lead_lead_touched_id", table_name="crm_lead_lead")
    op.drop_index("ix_crm_lead_lead_owner_id_touched_id", table_name="crm_lead_lead")
