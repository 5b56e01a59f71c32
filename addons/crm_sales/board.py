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
from sqlalchemy import func, or_, select, union_all
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


def aggregates(user, process: SalesProcess, scope: str) -> dict[int, tuple[int, Decimal, Decimal]]:
    """``{stage id: (count, amount, weighted)}`` of the board's columns: one query for the open stages and one
    for the recently closed ones (each an index range scan; an ``OR`` of both would scan the table)."""
    since = cutoff()
    active = [s for s in process.stages if s.active]
    open_ids = [s.id for s in active if s.kind == "open"]
    closed_ids = [s.id for s in active if s.kind != "open"]
    out: dict[int, list] = {}
    for window in (Opportunity.stage_id.in_(open_ids) & Opportunity.closed_at.is_(None),
                   Opportunity.stage_id.in_(closed_ids) & (Opportunity.closed_at >= since)):
        stmt = (select(Opportunity.stage_id, Opportunity.probability, func.count(),
                       fen_sum(Opportunity.amount_company))
                .where(window).group_by(Opportunity.stage_id, Opportunity.probability))
        for stage_id, probability, count, fen in db.session.execute(_scoped(stmt, user, scope)):
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


def first_cards(user, process: SalesProcess, scope: str, limit: int = PAGE) -> dict[int, tuple[list, bool]] | None:
    """Every column's first cards in one query, for a rep or a team (visibility by owner): the team's board rows
    numbered per stage (``row_number() OVER (PARTITION BY stage_id …)``) from the owner index. ``None`` when
    the reader sees by more than owner (an administrator): then each column is read on its own index."""
    owners = _owners(user, scope)
    if owners is None:
        return None
    active = [s for s in process.stages if s.active]
    open_ids = [s.id for s in active if s.kind == "open"]
    closed_ids = [s.id for s in active if s.kind != "open"]
    if not owners or not active:
        return {s.id: ([], False) for s in active}
    window = or_(Opportunity.stage_id.in_(open_ids) & Opportunity.closed_at.is_(None),
                 Opportunity.stage_id.in_(closed_ids) & (Opportunity.closed_at >= cutoff()))
    number = func.row_number().over(partition_by=Opportunity.stage_id,
                                    order_by=(Opportunity.closed_at.desc(), Opportunity.id.desc())).label("n")
    ranked = (select(Opportunity.id.label("id"), Opportunity.stage_id.label("stage_id"), number)
              .where(Opportunity.owner_id.in_(owners), window).subquery())
    rows = db.session.execute(select(ranked.c.id, ranked.c.stage_id).where(ranked.c.n <= limit + 1)
                              .order_by(ranked.c.stage_id, ranked.c.n)).all()
    ids = [r.id for r in rows]
    found = {}
    if ids:
        stmt = visible_to(user, select(Opportunity).where(Opportunity.id.in_(ids)), Opportunity)
        found = {o.id: o for o in db.session.execute(stmt.options(selectinload(Opportunity.customer))).unique().scalars()}
    out: dict[int, list] = {s.id: [] for s in active}
    for row in rows:
        if row.id in found:
            out.setdefault(row.stage_id, []).append(found[row.id])
    return {sid: (cards_[:limit], len(cards_) > limit) for sid, cards_ in out.items()}


def build(user, process: SalesProcess, scope: str) -> list[Column]:
    sums = aggregates(user, process, scope)
    firsts = first_cards(user, process, scope)
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
