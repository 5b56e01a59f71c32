"""Products (/products/) and the currencies and exchange rates administration page (/admin/currencies)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from core.crm.activities import CURRENCY_MANAGE, PRODUCT_WRITE, bp
from core.crm.activity_forms import CurrencyForm, ProductForm, RateForm
from core.crm.models import Currency, ExchangeRate, Product
from core.crm.money import company_currency, format_money
from core.crm.normalise import prefix_upper_bound, search_key
from core.extensions import db
from core.security import permission_required

PAGE_SIZE = 50
RATES_SHOWN = 60


def _currency_choices(current: str | None = None):
    rows = db.session.execute(
        select(Currency).where(or_(Currency.active.is_(True), Currency.code == (current or "")))
        .order_by(Currency.is_company.desc(), Currency.code)
    ).scalars()
    return [(c.code, f"{c.code} {c.symbol}".strip()) for c in rows]


@bp.route("/products/")
def product_list():
    q = request.args.get("q", "").strip()
    after = request.args.get("after", "")
    stmt = select(Product)
    if q:
        key = search_key(q)
        code = q.upper()
        stmt = stmt.where(
            or_(
                (Product.search_name >= key) & (Product.search_name < prefix_upper_bound(key)),
                func.upper(Product.code).startswith(code, autoescape=True),
            )
        )
    if after:
        stmt = stmt.where(Product.code > after)
    rows = db.session.execute(stmt.order_by(Product.code).limit(PAGE_SIZE + 1)).scalars().all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_template(
        "core/crm/product_list.html", products=rows, q=q, format_money=format_money,
        next_url=url_for(".product_list", q=q or None, after=rows[-1].code) if more else None,
        can_write=current_user.can(PRODUCT_WRITE),
    )


@bp.route("/products/new", methods=["GET", "POST"])
@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
@permission_required(PRODUCT_WRITE)
def product_edit(product_id: int | None = None):
    product = db.session.get(Product, product_id) if product_id is not None else None
    if product_id is not None and product is None:
        abort(404)
    form = ProductForm(obj=product)
    form.currency.choices = _currency_choices(product.currency if product else None)
    if request.method == "GET" and product is None:
        form.currency.data = company_currency()
    if form.validate_on_submit():
        code = form.code.data.strip()
        clash = db.session.execute(
            select(Product.id).where(func.lower(Product.code) == code.lower(), Product.id != (product_id or 0))
        ).first()
        if clash is not None:
            form.code.errors.append(_("A product with the code “%(code)s” exists already.", code=code))
        else:
            if product is None:
                product = Product()
                db.session.add(product)
            product.code = code
            product.name = form.name.data.strip()
            product.search_name = search_key(product.name)
            product.category = (form.category.data or "").strip()
            product.unit = (form.unit.data or "").strip()
            product.list_price = form.list_price.data
            product.currency = form.currency.data
            product.active = form.active.data
            try:
                db.session.commit()
            except IntegrityError:  # a colleague saved the same code a moment ago
                db.session.rollback()
                form.code.errors.append(_("A product with the code “%(code)s” exists already.", code=code))
            else:
                flash(_("Product “%(name)s” saved.", name=product.name), "success")
                return redirect(url_for(".product_list", q=product.code))
    return render_template("core/crm/product_form.html", form=form, product=product)


# -- currencies and exchange rates -------------------------------------------------------------------------
def _currencies_page(currency_form=None, rate_form=None, status=200):
    currencies = db.session.execute(
        select(Currency).order_by(Currency.is_company.desc(), Currency.code)
    ).scalars().all()
    rates = db.session.execute(
        select(ExchangeRate).order_by(ExchangeRate.day.desc(), ExchangeRate.currency).limit(RATES_SHOWN)
    ).scalars().all()
    if rate_form is None:
        rate_form = RateForm(formdata=None)
    rate_form.currency.choices = [(c.code, c.code) for c in currencies if not c.is_company]
    return render_template(
        "core/crm/currencies.html", currencies=currencies, rates=rates, company=company_currency(),
        currency_form=currency_form or CurrencyForm(formdata=None), rate_form=rate_form,
    ), status


@bp.route("/admin/currencies")
@permission_required(CURRENCY_MANAGE)
def currencies():
    return _currencies_page()


@bp.route("/admin/currencies/save", methods=["POST"])
@permission_required(CURRENCY_MANAGE)
def currency_save():
    form = CurrencyForm()
    if not form.validate_on_submit():
        return _currencies_page(currency_form=form, status=400)
    code = form.code.data.upper()
    currency = db.session.get(Currency, code)
    if currency is None:
        currency = Currency(code=code, is_company=False)
        db.session.add(currency)
    elif currency.is_company and not form.active.data:
        form.active.errors.append(_("The company currency cannot be deactivated."))
        return _currencies_page(currency_form=form, status=400)
    currency.symbol = (form.symbol.data or "").strip()
    currency.decimals = form.decimals.data
    currency.active = form.active.data
    db.session.commit()
    flash(_("Currency %(code)s saved.", code=code), "success")
    return redirect(url_for(".currencies"))


@bp.route("/admin/currencies/rates", methods=["POST"])
@permission_required(CURRENCY_MANAGE)
def rate_save():
    form = RateForm()
    form.currency.choices = [
        (code, code) for code in db.session.execute(select(Currency.code).where(Currency.is_company.is_(False))).scalars()
    ]
    if not form.validate_on_submit():
        return _currencies_page(rate_form=form, status=400)
    existing = db.session.execute(
        select(ExchangeRate).where(ExchangeRate.currency == form.currency.data, ExchangeRate.day == form.day.data)
    ).scalar()
    if existing is None:
        db.session.add(ExchangeRate(currency=form.currency.data, day=form.day.data, rate=form.rate.data))
        message = _("Rate of %(code)s from %(day)s saved.", code=form.currency.data, day=form.day.data.isoformat())
    else:
        existing.rate = form.rate.data
        message = _("The rate of %(code)s from %(day)s was replaced.", code=form.currency.data,
                    day=form.day.data.isoformat())
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(".currencies"))
