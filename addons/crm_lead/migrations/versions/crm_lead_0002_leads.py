"""crm_lead: the leads table

Revision ID: crm_lead_0002
Revises: crm_lead_0001
Create Date: 2026-11-23

``crm_lead_lead``: leads with their owner (nullable: unassigned), team, pool state, search keys, the duplicate
rules' match keys, contact and conversion times, what they were converted into and custom field values.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "crm_lead_0002"
down_revision = "crm_lead_0001"
branch_labels = None
depends_on = ("core_0011",)


def upgrade():
    op.create_table('crm_lead_lead',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('company', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('mobile', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('website', sa.String(length=255), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('industry', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('campaign', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('disqualify_reason', sa.String(length=64), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(), nullable=True),
    sa.Column('in_pool', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('pooled_at', sa.DateTime(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('search_name', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('initials', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('phone_digits', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('company_key', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('mobile_key', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('phone_key', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('email_key', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('first_contacted_at', sa.DateTime(), nullable=True),
    sa.Column('last_contacted_at', sa.DateTime(), nullable=True),
    sa.Column('qualified_at', sa.DateTime(), nullable=True),
    sa.Column('disqualified_at', sa.DateTime(), nullable=True),
    sa.Column('converted_at', sa.DateTime(), nullable=True),
    sa.Column('converted_by_id', sa.Integer(), nullable=True),
    sa.Column('converted_customer_id', sa.Integer(), nullable=True),
    sa.Column('converted_contact_id', sa.Integer(), nullable=True),
    sa.Column('converted_records', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('web_form_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['converted_by_id'], ['core_user.id'], name=op.f('fk_crm_lead_lead_converted_by_id_core_user')),
    sa.ForeignKeyConstraint(['converted_contact_id'], ['core_contact.id'], name=op.f('fk_crm_lead_lead_converted_contact_id_core_contact')),
    sa.ForeignKeyConstraint(['converted_customer_id'], ['core_customer.id'], name=op.f('fk_crm_lead_lead_converted_customer_id_core_customer')),
    sa.ForeignKeyConstraint(['created_by_id'], ['core_user.id'], name=op.f('fk_crm_lead_lead_created_by_id_core_user')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_crm_lead_lead_owner_id_core_user')),
    sa.ForeignKeyConstraint(['team_id'], ['core_department.id'], name=op.f('fk_crm_lead_lead_team_id_core_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_lead_lead'))
    )
    op.create_index(op.f('ix_crm_lead_lead_company_key'), 'crm_lead_lead', ['company_key'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_converted_customer_id'), 'crm_lead_lead', ['converted_customer_id'], unique=False)
    op.create_index('ix_crm_lead_lead_created_at_id', 'crm_lead_lead', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_email_key'), 'crm_lead_lead', ['email_key'], unique=False)
    op.create_index('ix_crm_lead_lead_in_pool_pooled_at_id', 'crm_lead_lead', ['in_pool', 'pooled_at', 'id'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_initials'), 'crm_lead_lead', ['initials'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_mobile_key'), 'crm_lead_lead', ['mobile_key'], unique=False)
    op.create_index('ix_crm_lead_lead_owner_id_claimed_at', 'crm_lead_lead', ['owner_id', 'claimed_at'], unique=False)
    op.create_index('ix_crm_lead_lead_owner_id_created_at_id', 'crm_lead_lead', ['owner_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_crm_lead_lead_owner_id_id', 'crm_lead_lead', ['owner_id', 'id'], unique=False)
    op.create_index('ix_crm_lead_lead_owner_id_last_contacted_at_id', 'crm_lead_lead', ['owner_id', 'last_contacted_at', 'id'], unique=False)
    op.create_index('ix_crm_lead_lead_owner_id_search_name_id', 'crm_lead_lead', ['owner_id', 'search_name', 'id'], unique=False)
    op.create_index('ix_crm_lead_lead_owner_id_status_id', 'crm_lead_lead', ['owner_id', 'status', 'id'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_phone_digits'), 'crm_lead_lead', ['phone_digits'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_phone_key'), 'crm_lead_lead', ['phone_key'], unique=False)
    op.create_index('ix_crm_lead_lead_region_id', 'crm_lead_lead', ['region', 'id'], unique=False)
    op.create_index(op.f('ix_crm_lead_lead_search_name'), 'crm_lead_lead', ['search_name'], unique=False)
    op.create_index('ix_crm_lead_lead_source_id', 'crm_lead_lead', ['source', 'id'], unique=False)
    op.create_index('ix_crm_lead_lead_status_id', 'crm_lead_lead', ['status', 'id'], unique=False)
    op.create_index('ix_crm_lead_lead_team_id_id', 'crm_lead_lead', ['team_id', 'id'], unique=False)
    # ### end Alembic commands ###


def downgrade():
    op.drop_table("crm_lead_lead")
