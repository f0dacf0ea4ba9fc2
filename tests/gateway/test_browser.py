"""A headless browser opens the example page of docs/gateway.md and shows live quotes.

Debian's ``chromium`` driven by Playwright with ``executable_path`` (Playwright's own browser
download cannot be fetched here). ``make test`` installs chromium where it can (Makefile
SYSTEM_TOOLS); without it the test skips, saying so.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .conftest import READ_TOKEN

pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def example_page() -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- example:browser -->\s*```html\n(.*?)```", text, re.S)
    assert found, "docs/gateway.md has no browser example"
    return found.group(1)


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium installed (apt-get install chromium; make test does)"
)
async def test_the_example_page_shows_live_quotes(
    redis_url, prefix, engine, start_gateway, tmp_path
):
    async_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")
    gw = await start_gateway(redis_url, prefix)
    page_file = tmp_path / "quotes.html"
    page_file.write_text(example_page(), encoding="utf-8")
    host, port = gw.address
    url = "{}?gw=ws://{}:{}&token={}&codes=005930".format(
        page_file.as_uri(), host, port, READ_TOKEN
    )
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(url)
            # The snapshot's row, then a live batch (the status line names its seq).
            await page.wait_for_selector("#q-005930", timeout=30000)
            await page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('live, seq')",
                timeout=30000,
            )
            first = await page.text_content("#q-005930 .price")
            seq1 = await page.text_content("#status")
            await page.wait_for_function(
                "s => document.getElementById('status').textContent !== s", arg=seq1,
                timeout=30000,
            )  # fmt: skip
            price = int((await page.text_content("#q-005930 .price")).replace(",", ""))
            assert price > 0 and first
            assert await page.locator("tbody tr").count() == 1  # the filter: one code only
            await page.screenshot(path=str(tmp_path / "quotes.png"))
        finally:
            await browser.close()
