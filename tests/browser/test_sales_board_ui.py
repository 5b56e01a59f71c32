"""End to end, the kanban board in a real browser on the real server (sales edition): dragging a card to a
stage whose required fields are missing is refused — the card goes back and the missing fields are listed —;
once the fields are filled (here through the REST API), the same drag moves it and the column sums follow."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from test_ui import sign_in

pytestmark = pytest.mark.browser


def _token(page: Page) -> dict:
    page.goto("/api/v1/tokens")
    page.locator('input[name="name"]').fill("board test")
    page.locator('form.form button[type="submit"]').click()
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("mosaic_")
    return {"Authorization": f"Bearer {secret}"}


def test_dragging_a_card_follows_the_stage_rules(browser_page: Page, mosaic_server):
    page = browser_page
    assert sign_in(page, mosaic_server.admin_password) == 302
    bearer = _token(page)
    api = page.request
    customer = api.post("/api/v1/customers", headers=bearer, data={"name": "看板测试机械有限公司"})
    assert customer.status == 201, customer.text()
    customer_id = customer.json()["data"]["id"]
    created = api.post("/api/v1/crm_sales.opportunities", headers=bearer,
                       data={"name": "看板测试商机", "customer_id": customer_id, "amount": "1234.56"})
    assert created.status == 201, created.text()
    opp = created.json()["data"]

    page.goto("/crm_sales/board?scope=all")
    card = page.locator(f"#card-{opp['id']}")
    expect(card).to_be_visible()
    first = page.locator(f'.board-column[data-stage="{opp["stage_id"]}"]')
    target = page.locator(".board-column").nth(2)  # "Key decision maker won": budget and decision maker required
    card.drag_to(target)
    expect(page.locator("#board-message")).to_contain_text("fill in")
    expect(page.locator("#board-missing li")).to_have_count(2)
    expect(first.locator(f"#card-{opp['id']}")).to_be_visible()  # back in its column

    contact = api.post("/api/v1/contacts", headers=bearer, data={"name": "赵总", "customer_id": customer_id})
    assert contact.status == 201, contact.text()
    patched = api.patch(f"/api/v1/crm_sales.opportunities/{opp['id']}", headers=bearer,
                        data={"contact_id": contact.json()["data"]["id"], "budget_known": True, "budget": "2000"})
    assert patched.status == 200, patched.text()
    page.reload()
    card = page.locator(f"#card-{opp['id']}")
    target = page.locator(".board-column").nth(2)
    card.drag_to(target)
    expect(page.locator("#board-message")).to_contain_text(re.compile("Moved to"))
    expect(target.locator(f"#card-{opp['id']}")).to_be_visible()
    expect(target.locator('[data-sum="count"]')).to_have_text("1")
    expect(target.locator('[data-sum="amount"]')).to_have_text("1,234.56")
    page.reload()
    expect(page.locator(".board-column").nth(2).locator(f"#card-{opp['id']}")).to_be_visible()
