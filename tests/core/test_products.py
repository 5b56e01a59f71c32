"""Products, currencies, exchange rates and money conversion."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core import accounts
from core.crm.models import Currency, ExchangeRate, Product
from core.crm.money import MoneyError, convert, ensure_currencies
from core.extensions import db
from core.testing import ADMIN_PASSWORD


def _rep(app):
    with app.app_context():
        role = accounts.ensure_role("t_rep", "Rep")
        accounts.ensure_user("rep", ADMIN_PASSWORD, roles=[role])
        db.session.commit()
    client = app.test_client()
    app.login(client, "rep")
    return client


def _product(**overrides):
    data = {"code": "MX-100", "name": "Mixer 100", "category": "Machines", "unit": "pc", "list_price": "12999.50",
            "currency": "CNY", "active": "y"}
    data.update(overrides)
    return data


def test_products_create_validate_search_and_permission(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    admin = app.test_client()
    app.login(admin, "admin")
    form = admin.get("/products/new").get_data(as_text=True)
    for code in ("CNY", "USD", "EUR", "HKD", "JPY"):
        assert f'value="{code}"' in form
    assert admin.post("/products/new", data=_product()).status_code == 302
    assert admin.post("/products/new", data=_product(code="PUMP-7", name="水泵 7", list_price="0",
                                                     currency="USD")).status_code == 302
    bad = [
        (_product(code="mx-100"), "A product with the code “mx-100” exists already."),
        (_product(code="NEW-1", list_price="-1"), "The price cannot be negative."),
        (_product(code="NEW-1", list_price="abc"), "Not a valid decimal value."),
        (_product(code="NEW-1", list_price="NaN"), "Enter a number."),
        (_product(code="NEW-1", list_price="1.005"), "Use at most two decimals."),
        (_product(code="NEW-1", list_price=""), "Enter a price (0 or more)."),
        (_product(code="NEW 1"), "Use letters, digits and . _ / - only."),
        (_product(code="NEW-1", currency="XXX"), "Not a valid choice"),
        (_product(code="NEW-1", name=""), "This field is required."),
    ]
    for data, message in bad:
        response = admin.post("/products/new", data=data)
        assert response.status_code == 200 and message in response.get_data(as_text=True), data
    with app.app_context():
        rows = {p.code: p for p in db.session.execute(select(Product)).scalars()}
        assert set(rows) == {"MX-100", "PUMP-7"}
        assert rows["MX-100"].list_price == Decimal("12999.50") and rows["PUMP-7"].list_price == Decimal("0")
        assert rows["PUMP-7"].currency == "USD" and rows["PUMP-7"].search_name == "水泵7"
        pump_id, mixer_id = rows["PUMP-7"].id, rows["MX-100"].id
    # renaming onto another product's code is refused; its own code is fine
    clash = admin.post(f"/products/{pump_id}", data=_product(code="MX-100", name="Pump"))
    assert "exists already" in clash.get_data(as_text=True)
    assert admin.post(f"/products/{mixer_id}", data=_product(list_price="13000")).status_code == 302
    with app.app_context():
        assert db.session.get(Product, pump_id).code == "PUMP-7"
        assert db.session.get(Product, mixer_id).list_price == Decimal("13000.00")

    listing = admin.get("/products/?q=水泵").get_data(as_text=True)
    assert "PUMP-7" in listing and "MX-100" not in listing
    assert "MX-100" in admin.get("/products/?q=mx").get_data(as_text=True)
    assert "¥13,000.00" in admin.get("/products/").get_data(as_text=True)

    rep = _rep(app)
    assert rep.get("/products/").status_code == 200  # everyone may read the catalogue
    assert rep.get("/products/new").status_code == 403
    assert rep.post(f"/products/{mixer_id}", data=_product(list_price="1")).status_code == 403
    assert rep.get("/admin/currencies").status_code == 403
    with app.app_context():
        assert db.session.get(Product, mixer_id).list_price == Decimal("13000.00")


def test_currencies_are_seeded_once(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    with app.app_context():
        ensure_currencies()
        ensure_currencies()
        db.session.commit()
        rows = {c.code: c for c in db.session.execute(select(Currency)).scalars()}
        assert set(rows) == {"CNY", "USD", "EUR", "HKD", "JPY"}
        assert [c for c in rows.values() if c.is_company] == [rows["CNY"]]
        assert rows["JPY"].decimals == 0 and rows["USD"].symbol == "$" and rows["HKD"].symbol == "HK$"


def _rates(app, *rates):
    with app.app_context():
        for code, day, rate in rates:
            db.session.add(ExchangeRate(currency=code, day=day, rate=Decimal(rate)))
        db.session.commit()


def test_conversion_is_exact_to_the_cent(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _rates(
        app,
        ("USD", date(2024, 1, 1), "7.1234"),
        ("USD", date(2024, 3, 1), "7.2000"),
        ("EUR", date(2024, 1, 1), "7.8125"),
        ("JPY", date(2024, 1, 1), "0.04851"),
    )
    with app.app_context():
        on = date(2024, 2, 15)
        assert convert(Decimal("100"), "USD", "CNY", on) == Decimal("712.34")
        assert convert(Decimal("712.34"), "CNY", "USD", on) == Decimal("100.00")
        assert convert(Decimal("100"), "USD", "CNY", date(2024, 3, 1)) == Decimal("720.00")  # the day's own rate
        assert convert(Decimal("100"), "USD", "CNY", date(2024, 12, 31)) == Decimal("720.00")  # latest before
        # EUR -> USD through CNY: 100 × 7.8125 / 7.1234 = 109.6737...
        assert convert(Decimal("100"), "EUR", "USD", on) == Decimal("109.67")
        # half-up: 0.005 CNY rounds up; JPY has no decimals: 1 CNY / 0.04851 = 20.614 -> 21
        assert convert(Decimal("1.005"), "CNY", "CNY", on) == Decimal("1.01")
        assert convert(Decimal("1"), "CNY", "JPY", on) == Decimal("21")
        assert convert(Decimal("10000"), "JPY", "USD", on) == Decimal("68.10")  # 485.1 / 7.1234 = 68.0998
        with pytest.raises(MoneyError) as missing:
            convert(Decimal("1"), "USD", "CNY", date(2023, 12, 31))
        assert str(missing.value) == "There is no exchange rate for USD on or before 2023-12-31."
        with pytest.raises(MoneyError) as missing:
            convert(Decimal("1"), "CNY", "HKD", on)
        assert "HKD" in str(missing.value)
        with pytest.raises(MoneyError) as unknown:
            convert(Decimal("1"), "XYZ", "CNY", on)
        assert str(unknown.value) == "Unknown currency “XYZ”."
        with pytest.raises(TypeError):
            convert(1.5, "CNY", "USD", on)


def test_currency_and_rate_admin(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    admin = app.test_client()
    app.login(admin, "admin")
    page = admin.get("/admin/currencies").get_data(as_text=True)
    assert "The company currency is CNY." in page
    assert admin.post("/admin/currencies/rates", data={"currency": "USD", "day": "2024-01-02", "rate": "7.1234"}
                      ).status_code == 302
    replaced = admin.post("/admin/currencies/rates", data={"currency": "USD", "day": "2024-01-02", "rate": "7.1"},
                          follow_redirects=True)
    assert "The rate of USD from 2024-01-02 was replaced." in replaced.get_data(as_text=True)
    for data, message in [
        ({"currency": "USD", "day": "2024-01-03", "rate": "0"}, "Enter a rate greater than 0."),
        ({"currency": "USD", "day": "2024-01-03", "rate": "-2"}, "Enter a rate greater than 0."),
        ({"currency": "USD", "day": "2024-01-03", "rate": "1.123456789"}, "Use at most 8 decimals"),
        ({"currency": "CNY", "day": "2024-01-03", "rate": "1"}, "Not a valid choice"),
        ({"currency": "USD", "day": "someday", "rate": "7"}, "Not a valid date value."),
    ]:
        response = admin.post("/admin/currencies/rates", data=data)
        assert response.status_code == 400 and message in response.get_data(as_text=True), data
    assert admin.post("/admin/currencies/save", data={"code": "gbp", "symbol": "£", "decimals": "2", "active": "y"}
                      ).status_code == 302
    refused = admin.post("/admin/currencies/save", data={"code": "CNY", "symbol": "¥", "decimals": "2"})
    assert refused.status_code == 400 and "cannot be deactivated" in refused.get_data(as_text=True)
    bad = admin.post("/admin/currencies/save", data={"code": "POUND", "decimals": "2", "active": "y"})
    assert bad.status_code == 400 and "Use the three-letter ISO code." in bad.get_data(as_text=True)
    with app.app_context():
        rates = db.session.execute(select(ExchangeRate.currency, ExchangeRate.day, ExchangeRate.rate)).all()
        assert [(c, d, Decimal(r)) for c, d, r in rates] == [("USD", date(2024, 1, 2), Decimal("7.1"))]
        assert db.session.get(Currency, "GBP").symbol == "£"
        assert db.session.get(Currency, "CNY").active is True
        assert db.session.execute(select(func.count()).select_from(Currency)).scalar() == 6
        assert convert(Decimal("10"), "USD", "CNY", date(2024, 5, 1)) == Decimal("71.00")


def test_demo_products_and_rates_are_loaded_once(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    with app.app_context():
        from core.crm.activities import load_demo_data

        for _ in range(2):
            load_demo_data(edition=None, language="zh_CN")
            db.session.commit()
        assert db.session.execute(select(func.count()).select_from(Product)).scalar() == 4
        assert db.session.execute(select(func.count()).select_from(ExchangeRate)).scalar() == 4
        assert db.session.execute(select(Product.name).where(Product.code == "SVC-IMPL")).scalar() == "实施服务"
        assert convert(Decimal("399"), "USD", "CNY", date.today()) == Decimal("2842.24")  # 399 × 7.1234
