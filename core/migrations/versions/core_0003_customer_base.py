"""core: the customer base

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-23

Organisation (departments, role scopes, sharing rules), picklists, customers, contacts, tags,
currencies and exchange rates, products, activities and their comments, API tokens, saved views.
"""

import sqlalchemy as sa
from alembic import op

revision = 'core_0003'
down_revision = 'core_0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('core_currency',
    sa.Column('code', sa.String(length=3), nullable=False),
    sa.Column('symbol', sa.String(length=8), nullable=False),
    sa.Column('decimals', sa.Integer(), nullable=False),
    sa.Column('is_company', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_core_currency'))
    )
    op.create_table('core_department',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['core_user.id'], name=op.f('fk_core_department_manager_id_core_user')),
    sa.ForeignKeyConstraint(['parent_id'], ['core_department.id'], name=op.f('fk_core_department_parent_id_core_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_department'))
    )
    with op.batch_alter_table('core_department', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_department_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_department_path'), ['path'], unique=False)

    op.create_table('core_picklist_value',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('picklist', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_picklist_value')),
    sa.UniqueConstraint('picklist', 'code', name='uq_core_picklist_value_picklist_code')
    )
    with op.batch_alter_table('core_picklist_value', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_picklist_value_picklist'), ['picklist'], unique=False)

    op.create_table('core_tag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_tag')),
    sa.UniqueConstraint('name', name=op.f('uq_core_tag_name'))
    )
    op.create_table('core_exchange_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('rate', sa.Numeric(precision=20, scale=8), nullable=False),
    sa.ForeignKeyConstraint(['currency'], ['core_currency.code'], name=op.f('fk_core_exchange_rate_currency_core_currency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_exchange_rate')),
    sa.UniqueConstraint('currency', 'day', name='uq_core_exchange_rate_currency_day')
    )
    op.create_table('core_product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('search_name', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('category', sa.String(length=128), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('list_price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['currency'], ['core_currency.code'], name=op.f('fk_core_product_currency_core_currency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_product')),
    sa.UniqueConstraint('code', name=op.f('uq_core_product_code'))
    )
    with op.batch_alter_table('core_product', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_product_search_name'), ['search_name'], unique=False)

    op.create_table('core_role_scope',
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['core_role.id'], name=op.f('fk_core_role_scope_role_id_core_role'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('role_id', 'object', name=op.f('pk_core_role_scope'))
    )
    op.create_table('core_sharing_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('access', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['core_department.id'], name=op.f('fk_core_sharing_rule_department_id_core_department'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_sharing_rule'))
    )
    with op.batch_alter_table('core_sharing_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_sharing_rule_object'), ['object'], unique=False)

    op.create_table('core_api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['core_user.id'], name=op.f('fk_core_api_token_user_id_core_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_core_api_token_token_hash'))
    )
    with op.batch_alter_table('core_api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('core_customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('search_name', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('initials', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('classification', sa.String(length=16), nullable=False),
    sa.Column('industry', sa.String(length=64), nullable=True),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('phone_digits', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('website', sa.String(length=255), nullable=False),
    sa.Column('last_contacted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_core_customer_owner_id_core_user')),
    sa.ForeignKeyConstraint(['parent_id'], ['core_customer.id'], name=op.f('fk_core_customer_parent_id_core_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_customer'))
    )
    with op.batch_alter_table('core_customer', schema=None) as batch_op:
        batch_op.create_index('ix_core_customer_classification_id', ['classification', 'id'], unique=False)
        batch_op.create_index('ix_core_customer_industry_id', ['industry', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_customer_initials'), ['initials'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_customer_last_contacted_at'), ['last_contacted_at'], unique=False)
        batch_op.create_index('ix_core_customer_owner_id_id', ['owner_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_customer_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_customer_phone_digits'), ['phone_digits'], unique=False)
        batch_op.create_index('ix_core_customer_region_id', ['region', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_customer_search_name'), ['search_name'], unique=False)

    op.create_table('core_saved_view',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['core_user.id'], name=op.f('fk_core_saved_view_user_id_core_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_saved_view'))
    )
    with op.batch_alter_table('core_saved_view', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_saved_view_user_id'), ['user_id'], unique=False)

    op.create_table('core_contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('search_name', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('initials', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('mobile', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('phone_digits', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('email_key', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('decision_role', sa.String(length=64), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['core_customer.id'], name=op.f('fk_core_contact_customer_id_core_customer')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_core_contact_owner_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_contact'))
    )
    with op.batch_alter_table('core_contact', schema=None) as batch_op:
        batch_op.create_index('ix_core_contact_customer_id_id', ['customer_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_contact_email_key'), ['email_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_contact_initials'), ['initials'], unique=False)
        batch_op.create_index('ix_core_contact_owner_id_id', ['owner_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_contact_phone_digits'), ['phone_digits'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_contact_search_name'), ['search_name'], unique=False)

    op.create_table('core_customer_tag',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['core_customer.id'], name=op.f('fk_core_customer_tag_customer_id_core_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag_id'], ['core_tag.id'], name=op.f('fk_core_customer_tag_tag_id_core_tag'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'tag_id', name=op.f('pk_core_customer_tag'))
    )
    with op.batch_alter_table('core_customer_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_customer_tag_tag_id'), ['tag_id'], unique=False)

    op.create_table('core_activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.Column('next_follow_up', sa.Date(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('related_object', sa.String(length=64), nullable=True),
    sa.Column('related_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['core_contact.id'], name=op.f('fk_core_activity_contact_id_core_contact')),
    sa.ForeignKeyConstraint(['customer_id'], ['core_customer.id'], name=op.f('fk_core_activity_customer_id_core_customer')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_core_activity_owner_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_activity'))
    )
    with op.batch_alter_table('core_activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_activity_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_core_activity_customer_id_id', ['customer_id', 'id'], unique=False)
        batch_op.create_index('ix_core_activity_owner_id_due_at', ['owner_id', 'due_at'], unique=False)
        batch_op.create_index('ix_core_activity_owner_id_id', ['owner_id', 'id'], unique=False)
        batch_op.create_index('ix_core_activity_related', ['related_object', 'related_id'], unique=False)

    op.create_table('core_activity_comment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['core_activity.id'], name=op.f('fk_core_activity_comment_activity_id_core_activity'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['core_user.id'], name=op.f('fk_core_activity_comment_author_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_activity_comment'))
    )
    with op.batch_alter_table('core_activity_comment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_activity_comment_activity_id'), ['activity_id'], unique=False)

    with op.batch_alter_table('core_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_core_user_department_id'), ['department_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_core_user_department_id_core_department'), 'core_department', ['department_id'], ['id'])



def downgrade():
    with op.batch_alter_table('core_user', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_core_user_department_id_core_department'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_core_user_department_id'))
        batch_op.drop_column('department_id')

    with op.batch_alter_table('core_activity_comment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_activity_comment_activity_id'))

    op.drop_table('core_activity_comment')
    with op.batch_alter_table('core_activity', schema=None) as batch_op:
        batch_op.drop_index('ix_core_activity_related')
        batch_op.drop_index('ix_core_activity_owner_id_id')
        batch_op.drop_index('ix_core_activity_owner_id_due_at')
        batch_op.drop_index('ix_core_activity_customer_id_id')
        batch_op.drop_index(batch_op.f('ix_core_activity_contact_id'))

    op.drop_table('core_activity')
    with op.batch_alter_table('core_customer_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_customer_tag_tag_id'))

    op.drop_table('core_customer_tag')
    with op.batch_alter_table('core_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_contact_search_name'))
        batch_op.drop_index(batch_op.f('ix_core_contact_phone_digits'))
        batch_op.drop_index('ix_core_contact_owner_id_id')
        batch_op.drop_index(batch_op.f('ix_core_contact_initials'))
        batch_op.drop_index(batch_op.f('ix_core_contact_email_key'))
        batch_op.drop_index('ix_core_contact_customer_id_id')

    op.drop_table('core_contact')
    with op.batch_alter_table('core_saved_view', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_saved_view_user_id'))

    op.drop_table('core_saved_view')
    with op.batch_alter_table('core_customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_customer_search_name'))
        batch_op.drop_index('ix_core_customer_region_id')
        batch_op.drop_index(batch_op.f('ix_core_customer_phone_digits'))
        batch_op.drop_index(batch_op.f('ix_core_customer_parent_id'))
        batch_op.drop_index('ix_core_customer_owner_id_id')
        batch_op.drop_index(batch_op.f('ix_core_customer_last_contacted_at'))
        batch_op.drop_index(batch_op.f('ix_core_customer_initials'))
        batch_op.drop_index('ix_core_customer_industry_id')
        batch_op.drop_index('ix_core_customer_classification_id')

    op.drop_table('core_customer')
    with op.batch_alter_table('core_api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_api_token_user_id'))

    op.drop_table('core_api_token')
    with op.batch_alter_table('core_sharing_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_sharing_rule_object'))

    op.drop_table('core_sharing_rule')
    op.drop_table('core_role_scope')
    with op.batch_alter_table('core_product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_product_search_name'))

    op.drop_table('core_product')
    op.drop_table('core_exchange_rate')
    op.drop_table('core_tag')
    with op.batch_alter_table('core_picklist_value', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_picklist_value_picklist'))

    op.drop_table('core_picklist_value')
    with op.batch_alter_table('core_department', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_department_path'))
        batch_op.drop_index(batch_op.f('ix_core_department_parent_id'))

    op.drop_table('core_department')
    op.drop_table('core_currency')
