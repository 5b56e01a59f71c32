"""Demo customers and contacts (``mosaic demo``): about 30 Chinese companies for the demo users."""

from __future__ import annotations

from sqlalchemy import select

from core import accounts
from core.crm.models import Contact, Customer
from core.extensions import db
from core.models import User

CITIES = ("上海", "北京", "深圳", "杭州", "苏州", "成都", "武汉", "广州", "南京", "西安")
REGIONS = {"上海": "east", "北京": "north", "深圳": "south", "杭州": "east", "苏州": "east",
           "成都": "southwest", "武汉": "central", "广州": "south", "南京": "east", "西安": "northwest"}
TRADES = (
    ("华信科技有限公司", "it"), ("恒通精密制造有限公司", "manufacturing"), ("百佳零售连锁有限公司", "retail"),
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟")
TITLES = ("总经理", "采购经理", "技术总监", "财务经理", "IT主管")
ROLES = ("decision_maker", "financial_buyer", "technical_buyer", "user", "influencer")
DEMO_PERMISSIONS = {
    "sales_manager": ("core.customer.read", "core.customer.write", "core.customer.delete",
                      "core.contact.read", "core.contact.write", "core.contact.delete",
                      "core.pool.claim", "core.pool.manage", "core.export.run", "core.import.run", "core.dedup.find"),
    # (a rep may import — what they import is theirs — but not export the customer list)
    "sales_rep": ("core.customer.read", "core.customer.write", "core.contact.read", "core.contact.write",
                  "core.pool.claim", "core.import.run"),
}


def load(language: str) -> int:
    """Create the demo customers that do not exist yet; returns how many were created."""
    users = {
        u.username: u
        for u in db.session.execute(select(User).where(User.username.in_(("manager", "rep")))).scalars()
    }
    if not users:
        return 0
    accounts.grant(DEMO_PERMISSIONS)
    owners = [users[name] for name in ("rep", "manager") if name in users]
    existing = set(db.session.execute(select(Customer.name)).scalars())
    created, number = 0, 0
    groups: dict[str, Customer] = {}
    for trade, industry in TRADES:
        for city in CITIES:
            number += 1
            name = f"{city}{trade}"
            if name in existing:
                continue
            owner = owners[number % len(owners)]
            customer = Customer(
                name=name,
                classification=("normal", "vip", "strategic")[number % 7 % 3],
                industry=industry,
                region=REGIONS[city],
                type="end_customer",
                status="active",
                owner_id=owner.id,
                address=f"{city}市人民路{number * 11}号",
                phone=f"021-{6000_0000 + number * 137:08d}",
                email=f"info{number}@example.cn",
                website=f"www.demo{number}.example.cn",
            )
            if city != "上海" and "上海" + trade in groups:
                customer.parent = groups["上海" + trade]  # the Shanghai company heads a group
            if city == "上海":
                groups[name] = customer
            db.session.add(customer)
            for k in range(1 + number % 2):
                i = number + k * 5
                db.session.add(
                    Contact(
                        customer=customer,
                        name=SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)],
                        title=TITLES[i % len(TITLES)],
                        mobile=f"138{number:04d}{k:04d}",
                        email=f"contact{number}_{k}@example.cn",
                        decision_role=ROLES[i % len(ROLES)],
                        owner_id=owner.id,
                    )
                )
            created += 1
    db.session.flush()
    return created
