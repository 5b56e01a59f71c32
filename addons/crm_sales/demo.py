"""Demo opportunities, quotes, orders and targets (``mosaic demo`` of an edition with crm_sales).

About two dozen opportunities on the demo customers, spread over every stage of the standard process — each
having gone through the stages before it on its way (the stage-duration report has something to show), with
their products, decision maker and BANT answers — a few won, one lost, one abandoned; quotes on the advanced
ones, an order for each won one; this quarter's targets for the demo rep, manager and team. The demo roles get
the Sales app's permissions and the manager sees the team's opportunities, quotes and orders (scope
``department``), as the core's demo does for customers.

The records are written in Simplified Chinese (a 繁體中文 demo converts them, see ``mosaic demo``), in English for
an English demo.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from core import accounts
from core.crm.activities import load_demo_products
from core.crm.customer_demo import load as load_demo_customers
from core.crm.models import Contact, Customer, Product
from core.extensions import db
from core.models import User
from core.timeutil import utcnow

from . import quotes, stages
from .hooks import DELETE, READ, WRITE
from .hooks_quotes import ORDER_WRITE, QUOTE_DELETE, QUOTE_WRITE
from .hooks_reports import REPORT_READ
from .hooks_targets import EXPENSE_APPROVE, EXPENSE_WRITE, TARGET_MANAGE
from .models import Opportunity, OpportunityProduct, StageChange, Target
from .opportunities import create_opportunity

DEMO_PERMISSIONS = {
    "sales_manager": (READ, WRITE, DELETE, REPORT_READ, QUOTE_WRITE, QUOTE_DELETE, ORDER_WRITE, TARGET_MANAGE,
                      EXPENSE_WRITE, EXPENSE_APPROVE),
    "sales_rep": (READ, WRITE, REPORT_READ, QUOTE_WRITE, EXPENSE_WRITE),
}
SCOPES = {"sales_manager": {obj: "department" for obj in ("opportunity", "quote", "order", "expense")}}

#: the stages of the standard process by position: 0–6 open (机会 … 订单), 7 won, 8 lost, 9 abandoned
WON, LOST, ABANDONED = 7, 8, 9
#: (stage position, days since created, days to the close date (open ones) or since it closed (closed ones),
#: products: (code, quantity))
PLAN = (
    (0, 3, 75, (("CRM-STD", 30),)),
    (0, 9, 60, (("CRM-ENT", 80), ("SVC-IMPL", 10))),
    (1, 14, 50, (("CRM-STD", 50),)),
    (1, 21, 45, (("CRM-ENT", 120), ("SVC-IMPL", 15))),
    (2, 26, 40, (("CRM-STD", 40), ("SVC-IMPL", 5))),
    (2, 33, 35, (("CRM-ENT", 60),)),
    (3, 38, 30, (("CRM-ENT", 150), ("SVC-IMPL", 20))),
    (3, 44, 26, (("CRM-STD", 80),)),
    (4, 49, 22, (("CRM-ENT", 200), ("SVC-IMPL", 25))),
    (4, 52, 18, (("HW-PAD", 40),)),
    (5, 57, 14, (("CRM-ENT", 90), ("SVC-IMPL", 12))),
    (5, 61, 10, (("CRM-STD", 120), ("SVC-IMPL", 8))),
    (6, 66, 6, (("CRM-ENT", 100),)),
    (6, 70, 4, (("CRM-STD", 60), ("SVC-IMPL", 4))),
    (WON, 75, 3, (("CRM-ENT", 110), ("SVC-IMPL", 18))),
    (WON, 90, 21, (("CRM-STD", 70),)),
    (WON, 120, 48, (("CRM-ENT", 45), ("SVC-IMPL", 6))),
    (WON, 150, 75, (("CRM-STD", 100), ("SVC-IMPL", 10))),
    (LOST, 65, 12, (("CRM-ENT", 300),)),
    (LOST, 100, 40, (("CRM-STD", 35),)),
    (ABANDONED, 80, 27, (("CRM-STD", 25),)),
    (0, 1, 80, (("HW-PAD", 15),)),
    (2, 17, 55, (("CRM-ENT", 70), ("SVC-IMPL", 9))),
    (4, 29, 28, (("CRM-STD", 90), ("SVC-IMPL", 6))),
)
TEXTS = {
    "zh": {
        "name": {"CRM-STD": "CRM 标准版采购", "CRM-ENT": "CRM 企业版项目", "HW-PAD": "销售平板采购"},
        "pain_points": "销售过程不透明，客户资料散落在个人手里，离职就带走客户",
        "goals": "统一客户资料，销售漏斗按团队可视，季度目标可追踪",
        "lost_note": "对方选择了价格更低的本地厂商",
        "abandoned_note": "客户预算冻结，项目暂停",
        "terms": "付款方式：合同签订后 5 个工作日内支付 50%，上线验收后支付 50%。",
    },
    "en": {
        "name": {"CRM-STD": "CRM Standard purchase", "CRM-ENT": "CRM Enterprise project",
                 "HW-PAD": "Sales tablets purchase"},
        "pain_points": "The sales process is opaque; customer records live with each rep and leave with them",
        "goals": "One customer base, the funnel visible by team, quarterly targets tracked",
        "lost_note": "They chose a cheaper local vendor",
        "abandoned_note": "The customer's budget is frozen; the project is on hold",
        "terms": "Payment: 50% within 5 working days of signing, 50% on acceptance.",
    },
}
#: the lost and abandoned ones' reasons (picklist opportunity_lost_reason)
REASONS = {LOST: "price", ABANDONED: "no_budget"}


def _at(created: datetime, end: datetime, step: int, steps: int) -> datetime:
    """The moment of the ``step``-th of ``steps`` moves between ``created`` and ``end`` (the last one's)."""
    return created + (end - created) * step / max(steps, 1)


def load(language: str) -> int:
    """Create the demo opportunities (with quotes, orders) and targets that do not exist yet; returns how many
    opportunities were created. Idempotent: an opportunity is known by its name and customer."""
    users = {u.username: u for u in db.session.execute(
        select(User).where(User.username.in_(("manager", "rep")))).scalars()}
    if not users:
        return 0
    accounts.grant(DEMO_PERMISSIONS, SCOPES)
    load_demo_customers(language)  # the addons' demos run in no set order: the customers and products first
    load_demo_products(language)
    texts = TEXTS["zh" if language in ("zh_CN", "zh_TW") else "en"]
    products = {p.code: p for p in db.session.execute(select(Product)).scalars()}
    owner_ids = [u.id for u in users.values()]
    customers = list(db.session.execute(select(Customer).where(Customer.owner_id.in_(owner_ids))
                                        .order_by(Customer.id).limit(len(PLAN))).scalars())
    if not customers:
        return 0
    process = stages.default_process()
    ladder = stages.active_stages(process)
    now = utcnow()
    today = now.date()
    created = 0
    for number, (position, age, close_in, lines) in enumerate(PLAN):
        customer = customers[number % len(customers)]
        name = f"{customer.name} {texts['name'][lines[0][0]]}"
        exists = db.session.execute(select(Opportunity.id).where(
            Opportunity.customer_id == customer.id, Opportunity.name == name)).first()
        if exists is not None or any(code not in products for code, _q in lines):
            continue
        owner = db.session.get(User, customer.owner_id)
        contact = db.session.execute(select(Contact).where(Contact.customer_id == customer.id)
                                     .order_by(Contact.id).limit(1)).scalar()
        currency = products[lines[0][0]].currency
        amount = sum((products[code].list_price * quantity for code, quantity in lines if
                      products[code].currency == currency), Decimal("0"))
        born = now - timedelta(days=age, hours=number)
        opportunity = create_opportunity({
            "name": name, "customer_id": customer.id, "contact_id": contact.id if contact else None,
            "amount": amount, "currency": currency, "budget_known": True,
            "budget": (amount * Decimal("1.1")).quantize(Decimal("1")),
            "close_date": _close_date(today, close_in, number) if position < WON else today,
            "purchase_date": _close_date(today, close_in, number) + timedelta(days=7) if position < WON else today,
            "source": ("referral", "website", "event", "call", "partner", "existing")[number % 6],
            "pain_points": texts["pain_points"], "goals": texts["goals"],
            "owner_id": owner.id, "created_at": born, "stage_entered_at": born,
        }, user=owner, stage=ladder[0], check=False)
        for code, quantity in lines:
            opportunity.products.append(OpportunityProduct(product_id=products[code].id, quantity=Decimal(quantity),
                                                           unit_price=products[code].list_price))
        db.session.execute(update(StageChange).where(StageChange.opportunity_id == opportunity.id)
                           .values(changed_at=born))
        path = list(range(1, position + 1)) if position < WON else [1, 2, 3, 4, 5, 6][:max(1, number % 6 + 1)]
        target = ladder[position] if position >= WON else None
        moves = [ladder[i] for i in path] + ([target] if target is not None else [])
        end = now - timedelta(days=close_in if position >= WON else 1, hours=number)
        for step, stage in enumerate(moves, start=1):
            note = texts["lost_note"] if position == LOST else texts["abandoned_note"] if position == ABANDONED else ""
            stages.move(opportunity, stage, owner, reason=REASONS.get(position) if stage is target else None,
                        note=note if stage is target else "", now=_at(born, end, step, len(moves)))
        if position >= 3 and position != LOST and position != ABANDONED:
            order = _quote(opportunity, contact, lines, products, owner, texts, won=position == WON,
                   sent=position >= 4, day=max(born.date(), today - timedelta(days=20)) if position < WON
                   else opportunity.close_date - timedelta(days=10))
            # the older orders have moved on: confirmed two weeks after, delivered after six
            for status, after in (("confirmed", 14), ("delivered", 42)):
                if order is not None and close_in >= after:
                    quotes.set_order_status(order, status)
        created += 1
    _targets(users, today)
    db.session.flush()
    return created


def _quarter_of(day: date) -> date:
    """The first day of ``day``'s quarter."""
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def _close_date(today: date, days: int, number: int) -> date:
    """An open opportunity's close date: most of them within this quarter (the funnel opens on this quarter: all
    its stages have some), their ``days`` (at most 80) scaled to what is left of it; every fourth next quarter."""
    start = _quarter_of(today)
    following = date(start.year + 1, 1, 1) if start.month == 10 else date(start.year, start.month + 3, 1)
    left = (following - today).days - 1
    if number % 4 == 3:
        return following + timedelta(days=days // 2)
    return today + timedelta(days=round(days * left / 80))


def _quote(opportunity, contact, lines, products, owner, texts, *, won: bool, sent: bool, day: date):
    """A quote of the opportunity's products dated ``day``: a draft, sent, or accepted with its order (returned)."""
    quote = quotes.create_quote(
        {"customer_id": opportunity.customer_id, "contact_id": contact.id if contact else None,
         "opportunity_id": opportunity.id, "currency": opportunity.currency, "quote_date": day,
         "valid_until": day + timedelta(days=30 if not won else 60), "discount_percent": Decimal("0"),
         "terms": texts["terms"], "owner_id": owner.id},
        [{"product_id": products[code].id, "description": products[code].name, "quantity": Decimal(quantity),
          "unit": products[code].unit, "unit_price": products[code].list_price, "discount_percent": Decimal("0"),
          "tax_percent": Decimal("13")} for code, quantity in lines if products[code].currency == opportunity.currency],
        owner)
    if sent and not won:  # (sending checks the validity against today; accepting, against the day it was won)
        quotes.send(quote, owner)
    return quotes.accept(quote, owner, today=opportunity.close_date) if won else None


def _targets(users: dict, today: date) -> None:
    """This quarter's monthly targets of the demo rep and manager, and their team's for the quarter."""
    quarter = _quarter_of(today)
    months = [date(quarter.year, quarter.month + k, 1) for k in range(3)]
    rows = [("user", user.id, "month", month, amount) for user, amount in
            ((users.get("rep"), Decimal("300000")), (users.get("manager"), Decimal("500000"))) if user is not None
            for month in months]
    team = next((u.department_id for u in users.values() if u.department_id is not None), None)
    if team is not None:
        rows.append(("department", team, "quarter", quarter, Decimal("2400000")))
    for subject, subject_id, kind, start, amount in rows:
        exists = db.session.execute(select(Target.id).where(
            Target.subject == subject, Target.subject_id == subject_id, Target.period_kind == kind,
            Target.period_start == start)).first()
        if exists is None:
            db.session.add(Target(subject=subject, subject_id=subject_id, period_kind=kind, period_start=start,
                                  amount=amount))
