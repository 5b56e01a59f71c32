"""core: phone numbers of Taiwan, landlines written with +86, Taiwan's places in company names

Revision ID: core_0021
Revises: core_0020
Create Date: 2026-12-08

Three changes of the keys that duplicate rules, "update by phone" and search compare (QA round of 2026-12-08):

- ``phone_digits``: a landline written with its country code keeps its area code's trunk 0 (``+86 21 6000 0137``
  is ``02160000137``, as ``021-60000137`` is), so that "update by phone" finds it in every format;
- ``phone_key`` / ``mobile_key``: in an instance whose default language is 繁體中文, a number written without its
  country code is read as Taiwanese (``0912-345-678`` = ``+886 912 345 678``), no longer as Chinese;
- ``name_key``: Taiwan's cities and counties (台北, 新竹縣 …) are region prefixes, and 县/縣 a region's suffix.

Every customer and contact is read; those whose keys come out differently are written. Names and numbers as
typed are never changed.
"""

from alembic import op

revision = "core_0021"
down_revision = "core_0020"
branch_labels = None
depends_on = None


def upgrade():
    from core.crm.dedup_normalise import name_key, phone_key
    from core.crm.normalise import phone_digits
    from core.crm.rekey import phone_region_of, recompute

    bind = op.get_bind()
    region = phone_region_of(bind)
    recompute(bind, "core_customer", ("name", "phone"), {
        "name_key": lambda r: name_key(r[0]),
        "phone_digits": lambda r: phone_digits(r[1]),
        "phone_key": lambda r: phone_key(r[1], region),
    })
    recompute(bind, "core_contact", ("mobile", "phone"), {
        "phone_digits": lambda r: phone_digits(r[0] or r[1]),
        "mobile_key": lambda r: phone_key(r[0], region),
        "phone_key": lambda r: phone_key(r[1], region),
    })


def downgrade():
    pass  # the keys find what the former ones found, and more
