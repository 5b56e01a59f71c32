"""Quotes (报价单): totals to the fen, the form (its lines, forged values refused with nothing written), the
version flow, accept → an order with the same lines in one transaction (twice, expired, superseded refused),
the expiry job, visibility, the print view and the PDF, the opportunity's card, the 360° panel, custom fields,
the audit trail, the recycle bin and the export."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import func, select

from addons.crm_sales import quotes
from addons.crm_sales.models import Opportunity, Order, OrderLine, Quote, QuoteLine
from addons.crm_sales.opportunities import create_opportunity
from core.crm import audit, custom_fields
from core.crm.custom_field_models import CustomField
from core.crm.models import Customer, Product, RoleScope
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import Role, RolePermission, User
from tests.core.crm_fixtures import client_for, setup_team

PERMISSIONS = ("crm_sales.app.read", "crm_sales.opportunity.write", "crm_sales.quote.write", "crm_sales.quote.delete",
               "crm_sales.order.write", "crm_sales.order.delete", "core.export.run")


def setup_quotes(app) -> dict:
    """The team of :func:`setup_team` with the sales permissions, the manager seeing the department's quotes
    and orders, a product and an opportunity of rep1 on rep1's customer."""
    ids = setup_team(app)
    with app.test_request_context():
        for role_name in ("t_rep", "t_mgr"):
            role = db.session.scalar(select(Role).where(Role.name == role_name))
            role.permissions.extend(RolePermission(permission=p) for p in PERMISSIONS)
            if role_name == "t_mgr":
                db.session.add_all([RoleScope(role_id=role.id, object=obj, scope="department")
                                    for obj in ("opportunity", "quote", "order")])
        product = Product(code="CNC-01", name="数控机床", unit="台", list_price=Decimal("33.33"), currency="CNY")
        db.session.add(product)
        rep1 = db.session.get(User, ids["users"]["rep1"])
        opp = create_opportunity({"name": "机床采购", "customer_id": ids["customers"]["rep1"],
                                  "amount": Decimal("100.00"), "owner_id": rep1.id}, user=rep1, check=False)
        db.session.commit()
        ids["product"], ids["opportunity"] = product.id, opp.id
    return ids


def form_data(ids, lines, **header) -> dict:
    data = {"customer": f"上海某某科技有限公司 #{ids['customers']['rep1']}", "contact_id": "",
            "opportunity_id": str(ids["opportunity"]), "currency": "CNY", "quote_date": date.today().isoformat(),
            "valid_until": (date.today() + timedelta(days=30)).isoformat(), "discount_percent": "0",
            "terms": "款到发货", "notes": "", "owner": "", "line_count": str(len(lines))}
    data.update(header)
    for i, line in enumerate(lines):
        for key, value in line.items():
            data[f"line-{i}-{key}"] = value
    return data


LINE = {"product_id": "", "description": "数控机床 CNC", "quantity": "3", "unit": "台", "unit_price": "33.33",
        "discount_percent": "10", "tax_percent": "13"}


def create_quote(client, ids, lines=(LINE,), **header) -> int:
    response = client.post("/crm_sales/quotes/new", data=form_data(ids, list(lines), **header))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_totals_are_exact_to_the_fen():
    line = SimpleNamespace(quantity=Decimal("3"), unit_price=Decimal("33.33"), discount_percent=Decimal("10"),
                           tax_percent=Decimal("13"), amount=None)
    # 3 × 33.33 = 99.99, −10 % = 89.991 → 89.99; tax 13 % = 11.6987 → 11.70
    assert quotes.compute([line], Decimal("0")) == (Decimal("89.99"), Decimal("11.70"), Decimal("101.69"))
    assert line.amount == Decimal("89.99")
    # the quote's 5 % before tax: 89.99 × 0.95 = 85.4905 → 85.49; tax 11.1137 → 11.11
    assert quotes.compute([line], Decimal("5")) == (Decimal("85.49"), Decimal("11.11"), Decimal("96.60"))
    half = SimpleNamespace(quantity=Decimal("1"), unit_price=Decimal("0.05"), discount_percent=Decimal("50"),
                           tax_percent=Decimal("0"), amount=None)
    assert quotes.compute([half], Decimal("0"))[0] == Decimal("0.03")  # 0.025 rounds half up


def test_a_quote_from_the_opportunity_with_its_totals_stored(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    opp_page = rep.get(f"/crm_sales/{ids['opportunity']}").get_data(as_text=True)
    assert 'id="opportunity-new-quote"' in opp_page and 'id="opportunity-quotes"' in opp_page
    form = rep.get(f"/crm_sales/quotes/new?opportunity_id={ids['opportunity']}")
    assert form.status_code == 200 and "上海某某科技有限公司" in form.get_data(as_text=True)
    more = rep.post("/crm_sales/quotes/new", data={**form_data(ids, [LINE]), "add_lines": "1"})
    assert more.status_code == 200 and 'name="line-5-quantity"' in more.get_data(as_text=True)
    product_line = {"product_id": str(ids["product"]), "description": "", "quantity": "2", "unit": "",
                    "unit_price": "", "discount_percent": "", "tax_percent": "13"}
    blank = dict.fromkeys(LINE, "")
    quote_id = create_quote(rep, ids, [LINE, product_line, blank], discount_percent="5")
    with app.app_context():
        quote = db.session.get(Quote, quote_id)
        assert re.fullmatch(rf"Q{date.today().year}-\d{{6}}", quote.number) and quote.version == 1
        assert quote.status == "draft" and quote.opportunity_id == ids["opportunity"]
        assert [line.amount for line in quote.lines] == [Decimal("89.99"), Decimal("66.66")]
        assert quote.lines[1].description == "数控机床" and quote.lines[1].unit == "台"
        # bases 85.49 + 63.33 (66.66 × 0.95 = 63.327); taxes 11.11 + 8.23 (8.2329)
        assert (quote.subtotal, quote.tax_total, quote.total) == (Decimal("148.82"), Decimal("19.34"),
                                                                  Decimal("168.16"))
        assert [e.field for e in audit.history(Quote, quote_id)]  # the creation is in the audit trail
    page = rep.get(f"/crm_sales/quotes/{quote_id}").get_data(as_text=True)
    assert "168.16" in page and 'id="quote-lines"' in page
    assert "168.16" in rep.get(f"/crm_sales/{ids['opportunity']}").get_data(as_text=True)
    panel = rep.get(f"/customers/{ids['customers']['rep1']}").get_data(as_text=True)
    assert "quotes-panel" in panel and f'data-quote="{quote_id}"' in panel
    listing = rep.get("/crm_sales/quotes/").get_data(as_text=True)
    assert f'data-id="{quote_id}"' in listing
    menu = listing.split('id="main-menu"')[1].split("</nav>")[0]
    assert 'href="/crm_sales/quotes/"' in menu and 'href="/crm_sales/orders/"' in menu
    with app.app_context():
        number = db.session.get(Quote, quote_id).number
    assert f'data-id="{quote_id}"' in rep.get(f"/crm_sales/quotes/?q={number}").get_data(as_text=True)
    assert 'id="quote-empty"' in rep.get("/crm_sales/quotes/?q=Q1999").get_data(as_text=True)


def test_forged_or_invalid_values_are_refused_with_nothing_written(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    cases = [
        ([{**LINE, "quantity": "abc"}], {}, "is not a number"),
        ([{**LINE, "discount_percent": "150"}], {}, "between"),
        ([{**LINE, "unit_price": "1.234"}], {}, "at most 2 decimals"),
        ([{**LINE, "product_id": "999999"}], {}, "active product"),
        ([{**LINE, "description": ""}], {}, "describe the item"),
        ([dict.fromkeys(LINE, "")], {}, "at least one line"),
        ([LINE], {"discount_percent": "-1"}, "between"),
        ([LINE], {"customer": f"北京秘密客户有限公司 #{ids['customers']['rep2']}"}, "Pick a customer"),
        ([LINE], {"contact_id": str(ids["contacts"]["rep2"])}, "contact of the quote"),
        ([LINE], {"currency": "XXX"}, "Not a valid choice"),
        ([LINE], {"valid_until": (date.today() - timedelta(days=1)).isoformat()}, "valid until a day before"),
    ]
    for lines, header, message in cases:
        response = rep.post("/crm_sales/quotes/new", data=form_data(ids, lines, **header))
        assert response.status_code == 400, (lines, header)
        assert message in response.get_data(as_text=True), (message, response.get_data(as_text=True)[-2500:])
    with app.app_context():
        assert _count(Quote) == 0 and _count(QuoteLine) == 0


def test_versions_send_edit_and_supersede(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    first = create_quote(rep, ids)
    edited = rep.post(f"/crm_sales/quotes/{first}/edit", data=form_data(ids, [{**LINE, "quantity": "4"}]))
    assert edited.status_code == 302
    assert rep.post(f"/crm_sales/quotes/{first}/send").status_code == 302
    with app.app_context():
        quote = db.session.get(Quote, first)
        assert quote.status == "sent" and quote.lines[0].quantity == Decimal("4")
        assert any(e.field == "status" and e.new_value == "sent" for e in audit.history(Quote, first))
    # a sent quote is not edited: a new version is
    again = rep.post(f"/crm_sales/quotes/{first}/edit", data=form_data(ids, [LINE]))
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/crm_sales/quotes/{first}")
    made = rep.post(f"/crm_sales/quotes/{first}/version")
    assert made.status_code == 302
    second = int(made.headers["Location"].split("/")[-1])
    with app.app_context():
        old, new = db.session.get(Quote, first), db.session.get(Quote, second)
        assert (old.status, new.status, new.version, new.number) == ("superseded", "draft", 2, old.number)
        assert [(line.description, line.quantity, line.amount) for line in new.lines] == \
               [(line.description, line.quantity, line.amount) for line in old.lines]
        assert new.total == old.total
    refused = rep.post(f"/crm_sales/quotes/{first}/accept")
    assert refused.status_code == 400 and "newer" in refused.get_data(as_text=True)
    assert rep.post(f"/crm_sales/quotes/{first}/version").status_code == 400
    page = rep.get(f"/crm_sales/quotes/{second}").get_data(as_text=True)
    assert 'data-version="1"' in page and 'data-version="2"' in page
    with app.app_context():
        assert _count(Order) == 0
    # the list: every version, or the latest ones only (its CSV export too)
    listed = rep.get("/crm_sales/quotes/").get_data(as_text=True)
    assert f"/crm_sales/quotes/{first}\"" in listed and f"/crm_sales/quotes/{second}\"" in listed
    latest = rep.get("/crm_sales/quotes/?versions=latest").get_data(as_text=True)
    assert f"/crm_sales/quotes/{first}\"" not in latest and f"/crm_sales/quotes/{second}\"" in latest
    assert '<option value="latest" selected>' in latest
    bad = rep.get("/crm_sales/quotes/?versions=oldest").get_data(as_text=True)
    assert "was ignored" in bad and f"/crm_sales/quotes/{first}\"" in bad
    for query, expected in (("", {first, second}), ("?versions=latest", {second})):
        lines = rep.get(f"/export/crm_sales.quotes.csv{query}").get_data().decode("utf-8-sig").splitlines()[1:]
        assert {int(line.split(",")[0]) for line in lines if line} == expected, (query, lines)


def test_accept_creates_the_order_once(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    quote_id = create_quote(rep, ids, [LINE, {**LINE, "description": "安装服务", "quantity": "1",
                                              "unit_price": "500", "discount_percent": "0", "tax_percent": "6"}],
                            discount_percent="10")
    accepted = rep.post(f"/crm_sales/quotes/{quote_id}/accept")
    assert accepted.status_code == 302
    order_id = int(accepted.headers["Location"].split("/")[-1])
    with app.app_context():
        quote, order = db.session.get(Quote, quote_id), db.session.get(Order, order_id)
        assert quote.status == "accepted" and quote.accepted_at is not None
        fields = ("product_id", "description", "quantity", "unit", "unit_price", "discount_percent", "tax_percent",
                  "amount")
        assert [tuple(getattr(line, f) for f in fields) for line in order.lines] == \
               [tuple(getattr(line, f) for f in fields) for line in quote.lines]
        assert (order.subtotal, order.tax_total, order.total) == (quote.subtotal, quote.tax_total, quote.total)
        assert order.total_company == order.total and order.status == "open"
        assert order.quote_id == quote_id and order.opportunity_id == ids["opportunity"]
        assert re.fullmatch(rf"SO{date.today().year}-000001", order.number)
    twice = rep.post(f"/crm_sales/quotes/{quote_id}/accept")
    assert twice.status_code == 400 and "already accepted" in twice.get_data(as_text=True)
    with app.app_context():
        assert _count(Order) == 1 and _count(OrderLine) == 2
        with app.test_request_context():
            quote = db.session.get(Quote, quote_id)
            try:
                quotes.accept(quote, db.session.get(User, ids["users"]["rep1"]))
                raise AssertionError("accepted twice")
            except quotes.QuoteError as exc:
                assert "already accepted" in str(exc)
            db.session.rollback()
            assert _count(Order) == 1
    order_page = rep.get(f"/crm_sales/orders/{order_id}").get_data(as_text=True)
    assert 'id="order-lines"' in order_page and "安装服务" in order_page
    # the histories show labels and names, not codes and ids
    quote_page = rep.get(f"/crm_sales/quotes/{quote_id}").get_data(as_text=True)
    status_row = re.search(r'data-field="status" data-action="update">(.*?)</tr>', quote_page, re.S).group(1)
    assert "Accepted" in status_row and ">accepted<" not in status_row
    owner_row = re.search(r'data-field="owner_id" data-action="create">(.*?)</tr>', order_page, re.S).group(1)
    assert "REP1" in owner_row and "#" not in owner_row
    assert re.search(r'data-field="total" data-action="create">\s*<td>[^<]*</td>\s*<td>Total', order_page)


def test_expired_quotes_are_refused_and_marked_by_the_job(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    late = create_quote(rep, ids)
    fresh = create_quote(rep, ids)
    with app.app_context():
        for quote_id in (late, fresh):
            quote = db.session.get(Quote, quote_id)
            quote.quote_date = date.today() - timedelta(days=40)
        db.session.get(Quote, late).valid_until = date.today() - timedelta(days=1)
        db.session.commit()
    refused = rep.post(f"/crm_sales/quotes/{late}/accept")
    assert refused.status_code == 400 and "expired" in refused.get_data(as_text=True)
    assert 'data-status="expired"' in rep.get(f"/crm_sales/quotes/{late}").get_data(as_text=True)
    with app.test_request_context():
        from core.plugins import flatten

        jobs = {job.id: job for job in flatten(app.extensions["mosaic"].hook.register_jobs())}
        assert jobs["crm_sales:quote_expiry"].func == "addons.crm_sales.quotes:expiry_job"
        assert db.session.get(Quote, late).status == "draft" and _count(Order) == 0
        assert quotes.expiry_job() == "1 quote(s) expired"
        assert quotes.expiry_job() == "0 quote(s) expired"  # idempotent
        assert db.session.get(Quote, late).status == "expired"
        assert db.session.get(Quote, fresh).status == "draft"
        assert any(e.new_value == "expired" for e in audit.history(Quote, late))
    # an expired quote may be quoted again as a new version
    assert rep.post(f"/crm_sales/quotes/{late}/version").status_code == 302
    assert rep.post(f"/crm_sales/quotes/{fresh}/reject").status_code == 302
    again = rep.post(f"/crm_sales/quotes/{fresh}/accept")
    assert again.status_code == 400 and "rejected" in again.get_data(as_text=True)


def test_visibility_print_and_pdf(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    quote_id = create_quote(rep, ids)
    other = client_for(app, "rep2")
    for url in ("", "/print", "/pdf", "/edit"):
        assert other.get(f"/crm_sales/quotes/{quote_id}{url}").status_code == 404, url
    for url in ("/send", "/accept", "/version", "/reject", "/delete"):
        assert other.post(f"/crm_sales/quotes/{quote_id}{url}").status_code == 404, url
    assert f'data-id="{quote_id}"' not in other.get("/crm_sales/quotes/").get_data(as_text=True)
    mgr = client_for(app, "mgr")
    assert mgr.get(f"/crm_sales/quotes/{quote_id}").status_code == 200
    printed = rep.get(f"/crm_sales/quotes/{quote_id}/print").get_data(as_text=True)
    assert 'id="print-number"' in printed and "quotes.css" in printed and "数控机床 CNC" in printed
    pdf = rep.get(f"/crm_sales/quotes/{quote_id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    data = pdf.get_data()
    assert data.startswith(b"%PDF-") and b"/STSong-Light" in data
    text = pdf_text(data)
    with app.app_context():
        number = db.session.get(Quote, quote_id).number
    assert number in text and "数控机床 CNC" in text and "101.69" in text and "款到发货" in text
    assert "上海某某科技有限公司" in text
    chinese = {"Accept-Language": "zh-CN"}
    for url in ("", "/print", "/pdf", "/edit"):
        assert rep.get(f"/crm_sales/quotes/{quote_id}{url}", headers=chinese).status_code == 200, url
    assert rep.get("/crm_sales/quotes/", headers=chinese).status_code == 200


def pdf_text(data: bytes) -> str:
    """The text shown by the PDF's content streams (reportlab: ASCII85 + Flate; CID strings in UCS-2)."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = re.sub(rb"\s", b"", match.group(1))
        try:
            content = zlib.decompress(base64.a85decode(raw[:-2] if raw.endswith(b"~>") else raw))
        except (ValueError, zlib.error):
            continue
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content, re.S):
            decoded = re.sub(rb"\\([0-7]{1,3}|.)", lambda m: bytes([int(m.group(1), 8)]) if m.group(1).isdigit()
                             else m.group(1), literal)
            out.append(decoded.decode("utf-16-be", "replace") if b"\x00" in decoded or len(decoded) % 2 == 0
                       and any(b > 127 for b in decoded) else decoded.decode("latin-1"))
    return "".join(out)


def test_custom_fields_recycle_bin_and_export(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    with app.app_context():
        db.session.add(CustomField(object="quote", key="project", type="text",
                                   labels={"zh_CN": "项目编号", "en": "Project code", "zh_TW": "項目編號"},
                                   rules={}, help={}))
        custom_fields.changed()
        db.session.commit()
    rep = client_for(app, "rep1")
    assert 'name="cf_project"' in rep.get("/crm_sales/quotes/new").get_data(as_text=True)
    quote_id = create_quote(rep, ids, cf_project="P-88")
    assert "P-88" in rep.get(f"/crm_sales/quotes/{quote_id}").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Quote, quote_id).custom == {"project": "P-88"}
        number = db.session.get(Quote, quote_id).number
    export = rep.get("/export/crm_sales.quotes.csv")
    assert export.status_code == 200
    csv_text = export.get_data().decode("utf-8-sig")
    assert number in csv_text and "101.69" in csv_text and "P-88" in csv_text
    assert rep.post(f"/crm_sales/quotes/{quote_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Quote, quote_id) is None and _count(QuoteLine) == 0
        entry = db.session.scalar(select(RecycleEntry).where(RecycleEntry.object == "quote"))
        assert entry is not None and entry.record_id == quote_id
        assert db.session.get(Customer, ids["customers"]["rep1"]) is not None
        assert db.session.get(Opportunity, ids["opportunity"]) is not None
