"""crm_lead: assignment rules

Revision ID: crm_lead_0003
Revises: crm_lead_0002
Create Date: 2026-11-23

``crm_lead_assign_rule``: ordered rules (conditions on lead fields, a target team, round-robin /
least-loaded / fixed user) with their persistent round-robin counter; a partial index of the open leads per
owner on ``crm_lead_lead`` (the least-loaded distribution's loads). Settings of the fallback and the lead
pool live in ``core_setting`` (keys ``crm_lead.assign.*`` and ``crm_lead.pool.*``).
"""

import sqlalchemy as sa
from alembic import op

revision = "crm_lead_0003"
down_revision = "crm_lead_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "crm_lead_assign_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("distribution", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("rr_counter", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["core_department.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_lead_assign_rule_team_id_core_department")),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_lead_assign_rule_user_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_lead_assign_rule")),
    )
    # the open leads per owner, for the least-loaded distribution (assignment_models.OPEN_LEAD_SQL)
    open_leads = sa.text("NOT in_pool AND status NOT IN ('converted', 'disqualified')")
    op.create_index("ix_crm_lead_lead_open_owner_id", "crm_lead_lead", ["owner_id"], unique=False,
                    sqlite_where=open_leads, postgresql_where=open_leads)


def downgrade():
    op.drop_index("ix_crm_lead_lead_open_owner_id", table_name="crm_lead_lead")
    op.drop_table("crm_lead_assign_rule")
