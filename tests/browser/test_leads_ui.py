"""End to end, Leads in a real browser on the real server (sales edition): a rep's day.

An administrator enters a lead on the form; typing the same mobile in another format on a second lead shows
the duplicate warning as they type (leads.js → /crm_lead/check), and saving is refused; the business-card
quick entry works on a phone-sized screen; the lead is converted into a customer and a contact in one step.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from test_ui import sign_in

pytestmark = pytest.mark.browser


def test_a_lead_is_entered_warned_about_duplicates_and_converted(browser_page: Page, mosaic_server):
    page = browser_page
    assert sign_in(page, mosaic_server.admin_password) == 302
    page.goto("/crm_lead/new")
    form = page.locator("#lead-form")
    form.locator('input[name="name"]').fill("王芳")
    form.locator('input[name="company"]').fill("上海浏览器测试科技有限公司")
    form.locator('input[name="mobile"]').fill("13812345678")
    form.locator('input[name="email"]').fill("wang@browser-test.cn")
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/crm_lead/\d+$"))
    lead_url = page.url
    expect(page.locator("h1")).to_contain_text("王芳")

    # a second lead: the same mobile typed in another format is flagged while typing, and the save refused
    page.goto("/crm_lead/new")
    form = page.locator("#lead-form")
    form.locator('input[name="name"]').fill("王芳二")
    form.locator('input[name="mobile"]').fill("+86 138-1234-5678")
    live = page.locator(".lead-dedup .dedup-live")
    expect(live).to_contain_text("王芳")
    form.locator('button[type="submit"]').click()
    expect(page.locator(".dedup-verdict.error")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/crm_lead/new$"))

    # convert the first lead: a new customer and its contact, in one step
    page.goto(lead_url)
    page.locator("#lead-convert-actions a.primary").click()
    expect(page.locator("#convert-form")).to_be_visible()
    page.locator('#convert-form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/customers/\d+|/crm_lead/\d+$"))
    page.goto(lead_url)
    expect(page.locator("body")).to_contain_text("上海浏览器测试科技有限公司")
    page.goto("/customers/?q=上海浏览器测试")
    expect(page.locator("body")).to_contain_text("上海浏览器测试科技有限公司")


def test_business_card_quick_entry_on_a_phone(chromium, mosaic_server):
    context = chromium.new_context(base_url=mosaic_server.url, locale="en-US", viewport={"width": 375, "height": 740},
                                   is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        assert sign_in(page, mosaic_server.admin_password) == 302
        page.goto("/crm_lead/quick")
        form = page.locator("#quick-form")
        expect(form.locator('input[name="name"]')).to_be_visible()
        # nothing wider than the screen: the form fits a phone
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 380, width
        form.locator('input[name="name"]').fill("名片客户")
        form.locator('input[name="company"]').fill("名片测试有限公司")
        form.locator('input[name="mobile"]').fill("13698765432")
        form.locator('button[type="submit"]').click()
        expect(page.locator("#quick-form input[name='name']")).to_have_value("")  # ready for the next card
        page.goto("/crm_lead/?q=名片客户")
        expect(page.locator("body")).to_contain_text("名片客户")
    finally:
        context.close()
