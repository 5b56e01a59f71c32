"""Demo leads (``mosaic demo`` of an edition with crm_lead): about 40 Chinese leads across sources, statuses
and owners, some never contacted for weeks (the reminders have something to show), with their follow-ups.

The demo roles get the leads' permissions and the manager sees the team's leads (scope ``department``), as
the core's demo does for customers and contacts.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import accounts
from core.crm.models import Activity
from core.extensions import db
from core.models import User
from core.timeutil import utcnow

from .leads import create_lead, log_contact
from .models import SOURCES, Lead

DEMO_PERMISSIONS = {
    "sales_manager": ("crm_lead.app.read", "crm_lead.lead.write", "crm_lead.lead.delete",
                      "crm_lead.settings.manage"),
    "sales_rep": ("crm_lead.app.read", "crm_lead.lead.write"),
}
SCOPES = {"sales_manager": {"lead": "department"}}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ("建国", "晓燕", "志强", "丽娜", "海涛", "秀英", "俊杰", "雪梅", "明辉", "婷婷")
COMPANIES = (
    ("上海", "云启信息技术有限公司", "it", "east"), ("北京", "博远教育科技有限公司", "education", "north"),
    ("深圳", "微联电子有限公司", "manufacturing", "south"), ("杭州", "青禾电子商务有限公司", "retail", "east"),
    ("成都", "天府物流有限公司", "logistics", "southwest"), ("武汉", "江城医疗器械有限公司", "healthcare", "central"),
    ("广州", "南粤建筑工程有限公司", "construction", "south"), ("西安", "长安金融服务有限公司", "finance", "northwest"),
)
TITLES = ("总经理", "采购经理", "IT经理", "行政主管", "市场总监", "")
#: (status, days since created, days since last contact or None, disqualify reason)
PLAN = (
    ("new", 1, None, None), ("new", 5, None, None), ("new", 12, None, None), ("new", 40, None, None),
    ("working", 20, 2, None), ("working", 35, 9, None), ("working", 50, 18, None), ("working", 80, 33, None),
    ("qualified", 30, 4, None), ("qualified", 70, 16, None), ("qualified", 95, 65, None),
    ("disqualified", 60, 20, "no_budget"), ("disqualified", 45, 30, "unreachable"),
)


def load(language: str) -> int:
    """Create the demo leads that do not exist yet (by e-mail); returns how many were created."""
    users = {u.username: u for u in db.session.execute(
        select(User).where(User.username.in_(("manager", "rep", "admin")))).scalars()}
    accounts.grant(DEMO_PERMISSIONS, SCOPES)
    owners = [users.get("rep"), users.get("manager"), users.get("rep"), None]
    existing = set(db.session.execute(select(Lead.email).where(Lead.email.like("%@demo-lead.cn"))).scalars())
    now, created = utcnow(), 0
    for number in range(40):
        email = f"lead{number + 1}@demo-lead.cn"
        if email in existing:
            continue
        city, company, industry, region = COMPANIES[number % len(COMPANIES)]
        status, age, contacted, reason = PLAN[number % len(PLAN)]
        owner = owners[number % len(owners)]
        if owner is None and status != "new":
            owner = users.get("rep")
        values = {
            "name": SURNAMES[number % len(SURNAMES)] + GIVEN[(number * 3) % len(GIVEN)],
            "company": f"{city}{company}" if number % 9 else "",
            "title": TITLES[number % len(TITLES)],
            "mobile": f"139{number + 1:04d}{(number * 7919) % 10000:04d}",
            "email": email,
            "region": region, "industry": industry,
            "source": SOURCES[number % len(SOURCES)],
            "campaign": "2026春季展会" if SOURCES[number % len(SOURCES)] == "event" else "",
            "status": status, "disqualify_reason": reason,
            "owner_id": owner.id if owner is not None else None,
            "team_id": owner.department_id if owner is not None else None,
            "created_at": now - timedelta(days=age, hours=number),
        }
        lead = create_lead(values, user=users.get("admin"))
        if status == "qualified":
            lead.qualified_at = now - timedelta(days=max(1, (contacted or 1) - 1))
        if status == "disqualified":
            lead.disqualified_at = now - timedelta(days=max(1, (contacted or 1) - 1))
        if contacted is not None and owner is not None:
            done_at = now - timedelta(days=contacted, hours=number % 5)
            db.session.add(Activity(kind=("call", "visit", "email", "meeting")[number % 4],
                                    subject=f"跟进 {values['name']}", notes="", status="done", done_at=done_at,
                                    owner_id=owner.id, related_object="lead", related_id=lead.id))
            log_contact(lead, done_at)
        created += 1
    db.session.flush()
    return created
