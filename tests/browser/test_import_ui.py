"""End to end: the import's progress bar (``core/static/js/import.js``) in a headless Chromium.

The file is uploaded and checked through the real pages; then the batch page is shown as it is while a big run
is going (``data-finished="false"``) and the status endpoint answers as such a run does, so that the script's
updates can be watched at leisure: the counts are written as the page's language writes numbers.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, Route, expect
from test_ui import sign_in

pytestmark = pytest.mark.browser

RUNNING = {"id": 0, "status": "checking", "dry_run": True, "total": 25000, "processed": 12345, "percent": 49,
           "created": 11000, "updated": 0, "skipped": 1234, "failed": 111, "contacts_created": 0, "message": "",
           "finished": False}


def test_the_progress_bar_writes_the_counts_as_the_language_does(browser_page: Page, mosaic_server, tmp_path):
    page = browser_page
    assert sign_in(page, mosaic_server.admin_password) == 302
    data = tmp_path / "progress.csv"
    data.write_text("客户名称,电话\n进度条测试有限公司,13800000000\n", encoding="utf-8-sig")
    page.goto("/import/customer/")
    page.set_input_files('main input[type="file"]', str(data))
    page.locator('main form button[type="submit"]').click()
    page.locator('button[value="dry_run"]').click()
    expect(page).to_have_url(re.compile(r"/import/\d+$"))
    expect(page.locator("#import-progress")).to_have_attribute("data-finished", "true")
    batch_url = page.url

    def while_running(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace('data-finished="true"', 'data-finished="false"'))

    page.route(re.compile(r"/import/\d+$"), while_running)
    page.route(re.compile(r"/import/\d+/status$"),
               lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(RUNNING)))
    page.goto(batch_url)
    box = page.locator("#import-progress")
    expect(box.locator('[data-field="processed"]')).to_have_text("12,345")
    expect(box.locator('[data-field="created"]')).to_have_text("11,000")
    expect(box.locator('[data-field="skipped"]')).to_have_text("1,234")
    expect(box.locator('[data-field="failed"]')).to_have_text("111")
    expect(box.locator("progress")).to_have_attribute("value", "49")
