"""The quote form in a real browser: "More lines" adds a row in place, a product fills its line, the totals are
previewed to the fen, and the saved quote has the server's totals."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from test_ui import sign_in

pytestmark = pytest.mark.browser


def test_the_quote_form_adds_lines_and_previews_totals(browser_page: Page, mosaic_server):
    page = browser_page
    assert sign_in(page, mosaic_server.admin_password) == 302
    page.goto("/api/v1/tokens")
    page.locator('input[name="name"]').fill("quote test")
    page.locator('form.form button[type="submit"]').click()
    bearer = {"Authorization": f"Bearer {page.locator('#token-secret').inner_text().strip()}"}
    customer = page.request.post("/api/v1/customers", headers=bearer, data={"name": "报价测试有限公司"})
    customer_id = customer.json()["data"]["id"]
    page.goto(f"/crm_sales/quotes/new?customer_id={customer_id}")
    rows = page.locator("tr.quote-line")
    expect(rows).to_have_count(3)
    page.locator("#add-lines").click()
    expect(rows).to_have_count(4)
    assert page.locator("#line-count").input_value() == "4"
    first = rows.nth(0)
    first.locator("input[name='line-0-description']").fill("数控机床")
    first.locator("input[name='line-0-quantity']").fill("3")
    first.locator("input[name='line-0-unit_price']").fill("33.33")
    first.locator("input[name='line-0-discount_percent']").fill("10")
    first.locator("input[name='line-0-tax_percent']").fill("13")
    last = rows.nth(3)
    last.locator("input[name='line-3-description']").fill("安装")
    last.locator("input[name='line-3-quantity']").fill("1")
    last.locator("input[name='line-3-unit_price']").fill("100")
    expect(first.locator("[data-line-amount]")).to_have_text("89.99")
    expect(page.locator("[data-preview-total]")).to_have_text("201.69")
    page.locator("#save-quote").click()
    expect(page.locator("#record-total")).to_contain_text("201.69")
    expect(page.locator("#quote-lines tbody tr")).to_have_count(2)
