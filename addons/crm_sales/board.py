"""The kanban board of opportunities (看板): one column per active stage of a process.

A column shows its count and the sums of the amount and of the weighted amount in the company currency, and
its first cards, newest first; "more" pages on by id (keyset). Open columns hold every open opportunity of
the stage; closed columns (won, lost, abandoned) only those closed in the last :data:`CLOSED_DAYS` days, so the
board never drags the whole history. Everything within what the reader may see, and within a scope: mine, my
team, or all I may see.

Cost at a million opportunities: the aggregates are two ``GROUP BY stage_id, probability`` (open; closed
recently) over covering indexes (crm_sales_0007): ``(stage_id, closed_at, owner_id, amount_company,
probability)`` for everyone's, ``(owner_id, stage_id, closed_at, probability, amount_company)`` for a rep's or
a team's — index range scans either way; the cards are one ``LIMIT`` query per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, column, func, or_, select, true, union_all, values
from sqlalchemy.orm import selectinload

from core.crm.visibility import owner_partition, visible_to
from core.extensions import db
from core.models import User
from core.timeutil import utcnow

from . import stages
from .funnel import FEN, fen_sum, yuan
from .models import Opportunity, SalesProcess, Stage

PAGE = 10
CLOSED_DAYS = 30
SCOPES = {"mine": _l("My opportunities"), "team": _l("My team"), "all": _l("All I may see")}


@dataclass
class Column:
    stage: Stage
    count: int = 0
    amount: Decimal = Decimal("0.00")
    weighted: Decimal = Decimal("0.00")
    cards: list = field(default_factory=list)
    more: bool = False

    @property
    def label(self) -> str:
        return stages.stage_label(self.stage.name)

    @property
    def closed(self) -> bool:
        return self.stage.kind != "open"


def _scoped(stmt, user, scope: str):
    stmt = visible_to(user, stmt, Opportunity)
    if scope == "mine":
        return stmt.where(Opportunity.owner_id == user.id)
    if scope == "team":
        if not user.department_id:
            return stmt.where(Opportunity.owner_id == user.id)
        team = select(User.id).where(User.department_id == user.department_id)
        return stmt.where(Opportunity.owner_id.in_(list(db.session.scalars(team))))
    return stmt


def _window(stage: Stage, cutoff):
    """The column's rows: every open one, or the ones closed since ``cutoff``."""
    if stage.kind == "open":
        return Opportunity.closed_at.is_(None)
    return Opportunity.closed_at >= cutoff


def cutoff():
    return utcnow() - timedelta(days=CLOSED_DAYS)


#: "work the owners out": :func:`build` works them out once and hands them to both of its queries
_FIND = object()


def aggregates(user, process: SalesProcess, scope: str, owners=_FIND) -> dict[int, tuple[int, Decimal, Decimal]]:
    """``{stage id: (count, amount, weighted)}`` of the board's columns: one query for the open stages and one
    for the recently closed ones (each an index range scan; an ``OR`` of both would scan the table).

    For a rep or a team (visibility by owner) they read the partial covering indexes of crm_sales_0010 per
    owner; SQLite is told so (``INDEXED BY``): its planner prefers the company-wide index by stage and filters
    the owners out of every open opportunity of the company (26–40 ms instead of 3–4 at a million)."""
    since = cutoff()
    active = [s for s in process.stages if s.active]
    open_ids = [s.id for s in active if s.kind == "open"]
    closed_ids = [s.id for s in active if s.kind != "open"]
    if owners is _FIND:
        owners = _owners(user, scope)
    if owners is not None and not owners:
        return {}
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    out: dict[int, list] = {}
    for stage_ids, window, index in ((open_ids, Opportunity.closed_at.is_(None), "ix_crm_sales_opportunity_owner_open"),
                                     (closed_ids, Opportunity.closed_at >= since,
                                      "ix_crm_sales_opportunity_owner_closed")):
        if not stage_ids:
            continue
        if owners is not None and sqlite:  # SQLAlchemy renders no table hint for SQLite: the query as SQL
            marks = ", ".join("?" * len(stage_ids)), ", ".join("?" * len(owners))
            condition = "closed_at IS NULL" if index.endswith("open") else "closed_at >= ?"
            params = (*stage_ids, *(() if index.endswith("open") else (since.strftime("%Y-%m-%d %H:%M:%S.%f"),)),
                      *owners)
            rows = db.session.connection().exec_driver_sql(
                "SELECT stage_id, probability, count(*), COALESCE(SUM(CAST(round(amount_company * 100) AS INTEGER)), 0) "
                f"FROM {Opportunity.__tablename__} INDEXED BY {index} WHERE stage_id IN ({marks[0]}) AND {condition} "
                f"AND owner_id IN ({marks[1]}) GROUP BY stage_id, probability", params).all()
        else:
            stmt = (select(Opportunity.stage_id, Opportunity.probability, func.count(),
                           fen_sum(Opportunity.amount_company))
                    .where(Opportunity.stage_id.in_(stage_ids), window)
                    .group_by(Opportunity.stage_id, Opportunity.probability))
            stmt = _scoped(stmt, user, scope) if owners is None else stmt.where(Opportunity.owner_id.in_(owners))
            rows = db.session.execute(stmt).all()
        for stage_id, probability, count, fen in rows:
            entry = out.setdefault(stage_id, [0, 0, Decimal(0)])
            entry[0] += count
            entry[1] += int(fen or 0)
            entry[2] += Decimal(int(fen or 0)) * Decimal(int(probability or 0))
    return {sid: (n, yuan(fen), (w / 10000).quantize(FEN, rounding=ROUND_HALF_UP)) for sid, (n, fen, w) in out.items()}


def _owners(user, scope: str) -> tuple[int, ...] | None:
    """The owners whose cards the reader sees in ``scope`` when visibility is by owner alone, else ``None``."""
    visible = owner_partition(user, Opportunity)
    if scope == "mine":
        wanted = {user.id}
    elif scope == "team" and user.department_id:
        wanted = set(db.session.scalars(select(User.id).where(User.department_id == user.department_id)))
    elif scope == "team":
        wanted = {user.id}
    else:
        return visible
    return tuple(sorted(wanted if visible is None else wanted & set(visible)))


def cards(user, stage: Stage, scope: str, before_id: int | None = None, limit: int = PAGE) -> tuple[list, bool]:
    """The column's cards — open ones newest first, closed ones most recently closed first — after the card
    ``before_id`` (keyset), and whether more follow.

    For a rep or a team (visibility by owner), the first ``limit + 1`` of each owner are taken from the index
    ``(owner_id, stage_id, …)`` and merged (one ``UNION ALL``), instead of sorting the team's whole column."""
    if stage.kind == "open":
        sort = Opportunity.id
        keyset = (Opportunity.id < before_id) if before_id else None
    else:
        sort = Opportunity.closed_at
        keyset = None
        if before_id:
            closed = db.session.scalar(select(Opportunity.closed_at).where(Opportunity.id == before_id))
            if closed is not None:
                keyset = or_(Opportunity.closed_at < closed,
                             (Opportunity.closed_at == closed) & (Opportunity.id < before_id))
    conditions = [Opportunity.stage_id == stage.id, _window(stage, cutoff())]
    if keyset is not None:
        conditions.append(keyset)
    owners = _owners(user, scope)
    if owners is None:
        stmt = select(Opportunity.id).where(*conditions)
        stmt = _scoped(stmt, user, scope).order_by(sort.desc(), Opportunity.id.desc()).limit(limit + 1)
        ids = list(db.session.scalars(stmt))
    elif not owners:
        ids = []
    else:
        parts = [select(select(Opportunity.id.label("id"), sort.label("k"))
                        .where(Opportunity.owner_id == owner, *conditions)
                        .order_by(sort.desc(), Opportunity.id.desc()).limit(limit + 1).subquery())
                 for owner in owners]
        merged = union_all(*parts).subquery()
        ids = list(db.session.scalars(select(merged.c.id).order_by(merged.c.k.desc(), merged.c.id.desc())
                                      .limit(limit + 1)))
    if not ids:
        return [], False
    stmt = visible_to(user, select(Opportunity).where(Opportunity.id.in_(ids)), Opportunity)
    found = {o.id: o for o in db.session.execute(stmt.options(selectinload(Opportunity.customer))).unique().scalars()}
    rows = [found[i] for i in ids if i in found]
    return rows[:limit], len(ids) > limit


def first_cards(user, process: SalesProcess, scope: str, limit: int = PAGE,
                owners=_FIND) -> dict[int, tuple[list, bool]] | None:
    """Every column's first cards for a rep or a team (visibility by owner), in one query: for each (owner,
    stage) the owner's first ``limit + 1`` cards of the column, straight from the partial indexes of open and of
    closed opportunities (crm_sales_0010), merged per column here. ``None`` when the reader sees by more than
    owner (an administrator): then each column is read on its own index.

    PostgreSQL runs it as a ``LATERAL`` join over the (owner, stage) pairs (planned once; a ``UNION ALL`` of a
    hundred parts costs more to plan than to run there), SQLite as a ``UNION ALL`` of the parts (it has no
    ``LATERAL``; its planning is cheap)."""
    if owners is _FIND:
        owners = _owners(user, scope)
    if owners is None:
        return None
    active = [s for s in process.stages if s.active]
    if not owners or not active:
        return {s.id: ([], False) for s in active}
    since = cutoff()
    pairs = [(owner, s.id, s.kind == "open") for owner in owners for s in active]
    rows = _first_rows(pairs, since, limit)
    per_stage: dict[int, list] = {}
    for row in rows:
        per_stage.setdefault(row.stage_id, []).append(row)
    chosen: dict[int, list[int]] = {}
    for stage_id, found in per_stage.items():
        # open: newest first (by id); closed: most recently closed first, then by id — as :func:`cards` pages
        found.sort(key=lambda r: (str(r.closed_at or ""), r.id), reverse=True)
        chosen[stage_id] = [r.id for r in found[:limit + 1]]
    ids = [i for stage_ids in chosen.values() for i in stage_ids]
    found_cards = {}
    if ids:
        stmt = visible_to(user, select(Opportunity).where(Opportunity.id.in_(ids)), Opportunity)
        found_cards = {o.id: o for o in
                       db.session.execute(stmt.options(selectinload(Opportunity.customer))).unique().scalars()}
    out = {}
    for stage in active:
        cards_ = [found_cards[i] for i in chosen.get(stage.id, []) if i in found_cards]
        out[stage.id] = (cards_[:limit], len(cards_) > limit)
    return out


def _first_rows(pairs: list[tuple[int, int, bool]], since, limit: int) -> list:
    """``(id, stage_id, closed_at)`` of the first ``limit + 1`` cards of each (owner, stage, is open)."""
    o = Opportunity
    if db.session.get_bind().dialect.name == "postgresql":
        parts = []
        for is_open in (True, False):
            wanted = [(owner, stage_id) for owner, stage_id, kind_open in pairs if kind_open is is_open]
            if not wanted:
                continue
            keys = values(column("owner", Integer), column("stage", Integer), name=f"pairs_{int(is_open)}").data(wanted)
            inner = select(o.id, o.stage_id, o.closed_at).where(o.owner_id == keys.c.owner, o.stage_id == keys.c.stage)
            if is_open:
                inner = inner.where(o.closed_at.is_(None)).order_by(o.id.desc())
            else:
                inner = inner.where(o.closed_at >= since).order_by(o.closed_at.desc(), o.id.desc())
            lateral = inner.limit(limit + 1).lateral(f"first_{int(is_open)}")
            parts.append(select(lateral.c.id, lateral.c.stage_id, lateral.c.closed_at)
                         .select_from(keys).join(lateral, true()))
        return db.session.execute(union_all(*parts) if len(parts) > 1 else parts[0]).all()
    # SQLite: the parts as plain SQL (a hundred SQLAlchemy selects cost more to build than to run); ``closed_at``
    # comes back as its stored ISO text, which sorts as the time does
    table = Opportunity.__table__.name
    open_part = (f"SELECT * FROM (SELECT id, stage_id, closed_at FROM {table} WHERE owner_id = ? AND stage_id = ? "
                 "AND closed_at IS NULL ORDER BY id DESC LIMIT ?)")
    closed_part = (f"SELECT * FROM (SELECT id, stage_id, closed_at FROM {table} WHERE owner_id = ? AND stage_id = ? "
                   "AND closed_at >= ? ORDER BY closed_at DESC, id DESC LIMIT ?)")
    since_text = since.strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = []
    connection = db.session.connection()
    for start in range(0, len(pairs), 400):  # SQLite allows 500 terms in a compound select
        sql, params = [], []
        for owner, stage_id, is_open in pairs[start:start + 400]:
            sql.append(open_part if is_open else closed_part)
            params += [owner, stage_id, limit + 1] if is_open else [owner, stage_id, since_text, limit + 1]
        rows += connection.exec_driver_sql(" UNION ALL ".join(sql), tuple(params)).all()
    return rows


def build(user, process: SalesProcess, scope: str) -> list[Column]:
    owners = _owners(user, scope)  # once for the page: the sums and the first cards both need them
    sums = aggregates(user, process, scope, owners)
    firsts = first_cards(user, process, scope, owners=owners)
    columns = []
    for stage in process.stages:
        if not stage.active:
            continue
        count, amount, weighted = sums.get(stage.id, (0, Decimal("0.00"), Decimal("0.00")))
        column = Column(stage=stage, count=count, amount=amount, weighted=weighted)
        if count:
            column.cards, column.more = firsts[stage.id] if firsts is not None else cards(user, stage, scope)
        columns.append(column)
    return columns


def days_in_stage(opportunity, today: date | None = None) -> int:
    today = today or utcnow().date()
    return max(0, (today - opportunity.stage_entered_at.date()).days) if opportunity.stage_entered_at else 0
