"""crm_sales: the funnel's monthly roll-up, kept by the database itself

Revision ID: crm_sales_0009
Revises: crm_sales_0008
Create Date: 2026-12-06

``crm_sales_funnel_month`` holds, per month of the close date, owner, team, stage and probability, the count,
the company-currency amount in integer fen and the summed sales cycle of the opportunities — exactly the rows of
the funnel's one aggregation (:func:`addons.crm_sales.funnel.aggregate`), so a quarter of the whole company reads
a few thousand rows instead of grouping a few hundred thousand.

It is kept by **triggers** on ``crm_sales_opportunity`` (insert, delete, and an update of one of the seven
columns it sums by), not by the application: every writer — the forms, the stage moves, imports and their undo,
merges, the recycle bin, core's handover and any addon's bulk ``UPDATE`` — keeps it right without knowing of it,
and a write and its roll-up commit or roll back together. Each change adds its delta with an upsert on the
primary key; a month whose rows all went away keeps a zero row, which sums to nothing.

Owner and team keys are ``0`` for "none" so that the primary key needs no ``NULL``. The existing opportunities
are rolled up here in one ``INSERT … SELECT``.

On SQLite, a later migration that rebuilds ``crm_sales_opportunity`` (``batch_alter_table`` copying the table)
drops its triggers with the old table: it must call :func:`create_triggers` of this module again.
"""

import sqlalchemy as sa
from alembic import op

revision = "crm_sales_0009"
down_revision = "crm_sales_0008"
branch_labels = None
depends_on = None

TABLE = "crm_sales_funnel_month"
KEY = ("month", "owner_key", "team_key", "stage_id", "probability")
SUMS = ("n", "fen", "cycle_seconds", "cycles")
#: an update of any other column leaves the roll-up alone
TRACKED = ("close_date", "owner_id", "team_id", "stage_id", "probability", "amount_company", "cycle_seconds")


def _values(row: str, dialect: str, sign: str) -> str:
    """The roll-up key and (signed) sums of one opportunity row (``NEW`` or ``OLD``), as SQL."""
    if dialect == "postgresql":
        month = f"CAST(date_trunc('month', {row}.close_date) AS date)"
        fen = f"CAST(round(COALESCE({row}.amount_company, 0) * 100) AS bigint)"
        counted = f"CASE WHEN {row}.cycle_seconds IS NULL THEN 0 ELSE 1 END"
    else:
        month = f"substr({row}.close_date, 1, 7) || '-01'"
        fen = f"CAST(round(COALESCE({row}.amount_company, 0) * 100) AS INTEGER)"
        counted = f"({row}.cycle_seconds IS NOT NULL)"
    return (f"{month}, COALESCE({row}.owner_id, 0), COALESCE({row}.team_id, 0), {row}.stage_id, "
            f"COALESCE({row}.probability, 0), {sign}1, {sign}{fen}, {sign}COALESCE({row}.cycle_seconds, 0), "
            f"{sign}{counted}")


def _upsert(row: str, dialect: str, sign: str) -> str:
    target = f"{TABLE} AS f" if dialect == "postgresql" else TABLE
    own = "f." if dialect == "postgresql" else ""
    sets = ", ".join(f"{c} = {own}{c} + excluded.{c}" for c in SUMS)
    return (f"INSERT INTO {target} ({', '.join(KEY + SUMS)}) VALUES ({_values(row, dialect, sign)}) "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets};")


def _changed(dialect: str) -> str:
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in TRACKED)


def _upsert_grouped(source: str, sign: str) -> str:
    """PostgreSQL: add the grouped (signed) sums of a transition table to the roll-up, one upsert per statement."""
    sets = ", ".join(f"{c} = f.{c} + excluded.{c}" for c in SUMS)
    return (f"INSERT INTO {TABLE} AS f ({', '.join(KEY + SUMS)}) "
            f"SELECT CAST(date_trunc('month', close_date) AS date), COALESCE(owner_id, 0), COALESCE(team_id, 0), "
            f"stage_id, COALESCE(probability, 0), {sign}count(*), "
            f"{sign}COALESCE(sum(CAST(round(COALESCE(amount_company, 0) * 100) AS bigint)), 0), "
            f"{sign}COALESCE(sum(cycle_seconds), 0), {sign}count(cycle_seconds) "
            f"FROM {source} GROUP BY 1, 2, 3, 4, 5 "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets};")


def create_triggers(bind) -> None:
    """Install the triggers keeping ``crm_sales_funnel_month`` (both backends).

    PostgreSQL: inserts and deletes by **statement**, over their transition tables (a ``COPY`` or a multi-row
    ``INSERT`` of a hundred thousand opportunities is one grouped upsert, not one per row); updates by row, only
    when one of the summed columns changed (transition tables cannot be combined with a column list). SQLite has
    only row triggers: one upsert per row, in-process and cheap."""
    dialect = bind.dialect.name
    if dialect == "postgresql":
        bind.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION crm_sales_funnel_track_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_upsert_grouped("new_rows", "")}
    ELSE
        {_upsert_grouped("old_rows", "-")}
    END IF;
    RETURN NULL;
END
$$""")
        bind.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION crm_sales_funnel_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_upsert("OLD", dialect, "-")}
    {_upsert("NEW", dialect, "")}
    RETURN NULL;
END
$$""")
        bind.exec_driver_sql("CREATE TRIGGER crm_sales_funnel_insert AFTER INSERT ON crm_sales_opportunity "
                             "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                             "EXECUTE FUNCTION crm_sales_funnel_track_rows()")
        bind.exec_driver_sql("CREATE TRIGGER crm_sales_funnel_delete AFTER DELETE ON crm_sales_opportunity "
                             "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
                             "EXECUTE FUNCTION crm_sales_funnel_track_rows()")
        bind.exec_driver_sql(f"CREATE TRIGGER crm_sales_funnel_update AFTER UPDATE OF {', '.join(TRACKED)} ON "
                             f"crm_sales_opportunity FOR EACH ROW WHEN ({_changed(dialect)}) "
                             "EXECUTE FUNCTION crm_sales_funnel_track()")
        # TRUNCATE fires no row or delete trigger: it empties the roll-up too
        bind.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION crm_sales_funnel_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {TABLE};
    RETURN NULL;
END
$$""")
        bind.exec_driver_sql("CREATE TRIGGER crm_sales_funnel_truncate AFTER TRUNCATE ON crm_sales_opportunity "
                             "FOR EACH STATEMENT EXECUTE FUNCTION crm_sales_funnel_truncate()")
        return
    bind.exec_driver_sql(f"CREATE TRIGGER crm_sales_funnel_insert AFTER INSERT ON crm_sales_opportunity "
                         f"BEGIN {_upsert('NEW', dialect, '')} END")
    bind.exec_driver_sql(f"CREATE TRIGGER crm_sales_funnel_delete AFTER DELETE ON crm_sales_opportunity "
                         f"BEGIN {_upsert('OLD', dialect, '-')} END")
    bind.exec_driver_sql(f"CREATE TRIGGER crm_sales_funnel_update AFTER UPDATE OF {', '.join(TRACKED)} ON "
                         f"crm_sales_opportunity WHEN {_changed(dialect)} "
                         f"BEGIN {_upsert('OLD', dialect, '-')} {_upsert('NEW', dialect, '')} END")


def drop_triggers(bind) -> None:
    for name in ("crm_sales_funnel_insert", "crm_sales_funnel_delete", "crm_sales_funnel_update",
                 "crm_sales_funnel_truncate"):
        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON crm_sales_opportunity")
        else:
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    if bind.dialect.name == "postgresql":
        for function in ("crm_sales_funnel_track", "crm_sales_funnel_track_rows", "crm_sales_funnel_truncate"):
            bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")


def backfill(bind) -> None:
    """Roll up the opportunities already stored (one ``INSERT … SELECT``)."""
    dialect = bind.dialect.name
    if dialect == "postgresql":
        month = "CAST(date_trunc('month', close_date) AS date)"
        fen = "CAST(round(COALESCE(amount_company, 0) * 100) AS bigint)"
    else:
        month = "substr(close_date, 1, 7) || '-01'"
        fen = "CAST(round(COALESCE(amount_company, 0) * 100) AS INTEGER)"
    bind.exec_driver_sql(
        f"INSERT INTO {TABLE} ({', '.join(KEY + SUMS)}) "
        f"SELECT {month}, COALESCE(owner_id, 0), COALESCE(team_id, 0), stage_id, COALESCE(probability, 0), "
        f"count(*), COALESCE(sum({fen}), 0), COALESCE(sum(cycle_seconds), 0), count(cycle_seconds) "
        f"FROM crm_sales_opportunity GROUP BY 1, 2, 3, 4, 5")


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("owner_key", sa.Integer(), nullable=False),
        sa.Column("team_key", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("fen", sa.BigInteger(), nullable=False),
        sa.Column("cycle_seconds", sa.BigInteger(), nullable=False),
        sa.Column("cycles", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_crm_sales_funnel_month"),
    )
    op.create_index("ix_crm_sales_funnel_month_owner", TABLE, ["owner_key", "month"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # every write of an opportunity updates a row here: room on each page keeps those updates HOT (no new
        # index entries, space reclaimed by page pruning without waiting for VACUUM)
        bind.exec_driver_sql(f"ALTER TABLE {TABLE} SET (fillfactor = 50)")
    backfill(bind)
    create_triggers(bind)


def downgrade():
    drop_triggers(op.get_bind())
    op.drop_index("ix_crm_sales_funnel_month_owner", table_name=TABLE)
    op.drop_table(TABLE)
