"""The browser the page tests use really renders and runs script (a failing setup shows here first)."""

from __future__ import annotations


def test_chromium_renders_a_page(browser, tmp_path):
    page_file = tmp_path / "p.html"
    page_file.write_text("<button id=b onclick=\"this.textContent='clicked'\">go</button>")
    page = browser.new_page()
    page.goto(page_file.as_uri())
    page.click("#b")
    assert page.text_content("#b") == "clicked"
    page.close()
