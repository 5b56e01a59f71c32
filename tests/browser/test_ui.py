"""End to end: the real server (``mosaic init`` + ``mosaic run``) driven by a headless Chromium.

An administrator signs in, switches the interface to 简体中文, enables the Service app on the Apps page,
sees it in the menu, disables it again, and its pages are gone.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SERVICE_LINK = '#main-menu a[data-endpoint="crm_service.index"]'


@cache
def zh_catalogue() -> dict[str, str]:
    """msgid -> msgstr of the zh_CN catalogues of the core and the built-in addons."""
    found: dict[str, str] = {}
    for po in [ROOT / "core", *sorted((ROOT / "addons").iterdir())]:
        path = po / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"
        if path.is_file():
            with path.open("rb") as fh:
                for message in read_po(fh, locale="zh_CN"):
                    if message.id and isinstance(message.id, str) and message.string and not message.fuzzy:
                        found.setdefault(message.id, message.string)
    return found


def zh(msgid: str) -> str:
    """The 简体中文 of an English message, which must be translated."""
    text = zh_catalogue().get(msgid)
    assert text and text != msgid, f"“{msgid}” has no 简体中文 translation"
    return text


def sign_in(page: Page, password: str, username: str = "admin") -> int:
    """Fill in and submit the login form; return the HTTP status of the POST."""
    page.goto("/login")
    form = page.locator("#login-form")
    form.locator('input[name="username"]').fill(username)
    form.locator('input[name="password"]').fill(password)
    with page.expect_response(lambda r: r.request.method == "POST" and "/login" in r.url) as posted:
        form.locator('button[type="submit"]').click()
    return posted.value.status


def test_wrong_password_shows_an_error_and_stays_on_the_login_page(browser_page: Page, mosaic_server):
    page = browser_page
    assert sign_in(page, "not-the-password") == 401
    expect(page.locator(".flash-error")).to_have_text("Wrong username or password.")
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#main-menu")).to_have_count(0)
    expect(page.locator('#login-form input[name="password"]')).to_have_value("")
    # Still signed out: a protected page sends the browser back to the login page.
    page.goto("/admin/apps")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("#login-form")).to_be_visible()


def test_admin_switches_to_chinese_and_enables_then_disables_an_app(browser_page: Page, mosaic_server, tmp_path):
    page = browser_page
    assert sign_in(page, mosaic_server.admin_password) == 302
    expect(page.locator("#main-menu")).to_be_visible()
    expect(page.locator("#main-menu summary")).to_have_text("Settings")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # The language menu of the top bar submits itself and comes back to the same page.
    page.locator("#language-select").select_option(label="简体中文")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#main-menu summary")).to_have_text("设置")
    expect(page.locator('#main-menu a[data-endpoint="main.index"]')).to_have_text("首页")
    expect(page.locator("#language-select")).to_have_value("zh_CN")
    expect(page.locator("#language-select option[selected]")).to_have_attribute("value", "zh_CN")
    expect(page.locator("#logout")).to_have_text(zh("Sign out"))

    # The Apps page, through the Settings menu.
    page.locator("#main-menu summary").click()
    page.locator('#main-menu a[data-endpoint="admin.apps"]').click()
    expect(page).to_have_url(re.compile(r"/admin/apps$"))
    expect(page.locator("h1")).to_have_text(zh("Apps"))
    card = page.locator("#addon-crm_service")
    expect(card).to_have_attribute("data-state", "available")
    expect(page.locator(SERVICE_LINK)).to_have_count(0)
    page.screenshot(path=str(tmp_path / "apps-before.png"), full_page=True)

    card.locator("[data-action=enable]").click()
    expect(page.locator(".flash-success")).to_contain_text("服务管理")
    expect(card).to_have_attribute("data-state", "enabled")
    expect(page.locator(SERVICE_LINK)).to_be_visible()
    expect(page.locator(SERVICE_LINK)).to_have_text("服务管理")
    page.screenshot(path=str(tmp_path / "apps-enabled.png"), full_page=True)

    page.locator(SERVICE_LINK).click()
    expect(page).to_have_url(re.compile(r"/crm_service/$"))
    expect(page.locator("h1")).to_contain_text("服务管理")

    page.goto("/admin/apps")
    card.locator("[data-action=disable]").click()
    expect(page.locator(".flash-success")).to_contain_text("服务管理")
    expect(card).to_have_attribute("data-state", "disabled")
    expect(page.locator(SERVICE_LINK)).to_have_count(0)
    page.screenshot(path=str(tmp_path / "apps-disabled.png"), full_page=True)

    response = page.goto("/crm_service/")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text(zh("Page not found"))
    expect(page.locator(SERVICE_LINK)).to_have_count(0)
