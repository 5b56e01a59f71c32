"""Test helper: the funnel's monthly roll-up (kept by triggers, crm_sales_0009) must equal the opportunities
grouped from scratch, after any writer."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from addons.crm_sales.models import FunnelMonth, Opportunity
from core.extensions import db


def recomputed() -> dict[tuple, tuple]:
    """The roll-up's rows computed in Python from every opportunity (zero rows left out)."""
    out: dict[tuple, list[int]] = {}
    for o in db.session.execute(select(Opportunity.close_date, Opportunity.owner_id, Opportunity.team_id,
                                       Opportunity.stage_id, Opportunity.probability, Opportunity.amount_company,
                                       Opportunity.cycle_seconds)):
        key = (o.close_date.replace(day=1), o.owner_id or 0, o.team_id or 0, o.stage_id, o.probability or 0)
        entry = out.setdefault(key, [0, 0, 0, 0])
        fen = int((Decimal(str(o.amount_company or 0)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        entry[0] += 1
        entry[1] += fen
        entry[2] += o.cycle_seconds or 0
        entry[3] += o.cycle_seconds is not None
    return {k: tuple(v) for k, v in out.items()}


def stored() -> dict[tuple, tuple]:
    """The roll-up's rows as the triggers left them (zero rows left out)."""
    db.session.flush()
    rows = {}
    for f in db.session.scalars(select(FunnelMonth)):
        values = (int(f.n), int(f.fen), int(f.cycle_seconds), int(f.cycles))
        if any(values):
            rows[(f.month, f.owner_key, f.team_key, f.stage_id, f.probability)] = values
    return rows


def assert_rollup_matches() -> int:
    """Assert the roll-up equals the recomputation; returns how many opportunities it counts."""
    expected, actual = recomputed(), stored()
    assert actual == expected, {"missing or wrong": {k: (v, actual.get(k)) for k, v in expected.items()
                                                     if actual.get(k) != v},
                                "extra": {k: v for k, v in actual.items() if k not in expected}}
    return sum(v[0] for v in actual.values())
