"""The dashboard without llama-server: it loads, every tab is reachable by keyboard, it reads at
390 px, its tabs fit at 420 px, and it asks for an admin key when the server has admin keys."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.dashboard.harness import serve

TABS = ["Status", "Models", "Instances", "Profiles", "Usage", "Logs", "Playground"]


def test_page_loads_and_tabs_work_by_keyboard(page: Page, tmp_path: Path, artifacts: Path) -> None:
    with serve(tmp_path / "srv") as server:
        page.goto(server.url + "/")
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator("#count-discovered .card-value")).to_have_text(re.compile(r"^\d+$"))

        # Tab from the top of the page into the tab list, then arrows move between tabs.
        page.locator("#tab-status").focus()
        for name in TABS[1:]:
            page.keyboard.press("ArrowRight")
            tab = page.get_by_role("tab", name=name)
            expect(tab).to_be_focused()
            expect(tab).to_have_attribute("aria-selected", "true")
            expect(page.locator(f"#panel-{name.lower()}")).to_be_visible()
        page.keyboard.press("Home")
        expect(page.get_by_role("tab", name="Status")).to_have_attribute("aria-selected", "true")
        page.keyboard.press("End")
        expect(page.get_by_role("tab", name="Playground")).to_have_attribute(
            "aria-selected", "true"
        )
        # Tab leaves the tab list for the panel's content.
        page.keyboard.press("Tab")
        expect(page.locator("#panel-playground")).to_be_focused()

        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#models-body tr").first).to_be_visible()
        page.screenshot(path=artifacts / "smoke-models-1280.png")


def test_narrow_screen(page: Page, tmp_path: Path, artifacts: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    with serve(tmp_path / "srv") as server:
        page.goto(server.url + "/#models")
        expect(page.locator("#models-body tr[data-id]").first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways at 390 px ({width} px wide)"
        page.screenshot(path=artifacts / "models-390.png", full_page=True)
        page.goto(server.url + "/#status")
        expect(page.locator("#count-discovered .card-value")).to_have_text(re.compile(r"^\d+$"))
        page.screenshot(path=artifacts / "status-390.png", full_page=True)


def test_every_tab_is_visible_and_clickable_at_420_px(
    page: Page, tmp_path: Path, artifacts: Path
) -> None:
    """Prevents the tab bar being cut at 420 px: it scrolled sideways, so the last tabs were
    off screen with nothing saying they were there."""
    page.set_viewport_size({"width": 420, "height": 800})
    with serve(tmp_path / "srv") as server:
        page.goto(server.url + "/")
        expect(page.locator("#live")).to_have_text("live")
        for name in TABS:
            tab = page.get_by_role("tab", name=name)
            box = tab.bounding_box()
            assert box is not None, name
            assert box["x"] >= 0 and box["x"] + box["width"] <= 420, (name, box)
            # Nothing covers it: the element at its centre is the tab itself.
            hit = page.evaluate(
                "([x, y]) => document.elementFromPoint(x, y)?.closest('[role=tab]')?.id",
                [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
            )
            assert hit == f"tab-{name.lower()}", (name, hit)
        nav = page.evaluate("[document.querySelector('nav').scrollWidth, innerWidth]")
        assert nav[0] <= nav[1], f"the tab bar scrolls sideways ({nav[0]} px in {nav[1]} px)"
        for name in reversed(TABS):
            page.get_by_role("tab", name=name).click()
            expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")
            expect(page.locator(f"#panel-{name.lower()}")).to_be_visible()
        page.screenshot(path=artifacts / "tabs-420.png")


def test_unknown_static_file_is_404(tmp_path: Path) -> None:
    with serve(tmp_path / "srv") as server:
        assert httpx.get(server.url + "/static/js/app.js").status_code == 200
        assert httpx.get(server.url + "/static/../../app.py").status_code == 404
        assert httpx.get(server.url + "/static/%2e%2e/router.py").status_code == 404
        assert httpx.get(server.url + "/static/nothing.js").status_code == 404


def test_asks_for_admin_key_and_keeps_it_for_the_session(
    page: Page, tmp_path: Path, artifacts: Path
) -> None:
    key = "admin-key-for-the-dashboard-test"
    with serve(tmp_path / "srv", admin_key=key) as server:
        page.goto(server.url + "/#models")
        dialog = page.get_by_role("dialog", name="Admin key needed")
        expect(dialog).to_be_visible()
        page.screenshot(path=artifacts / "admin-key-prompt.png")

        # A wrong key is refused and asked for again.
        page.get_by_label("Admin key", exact=True).fill("not-the-key-at-all")
        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        page.get_by_label("Admin key", exact=True).fill(key)
        page.keyboard.press("Enter")
        expect(dialog).to_be_hidden()
        expect(page.locator("#models-body tr[data-id]").first).to_be_visible()
        expect(page.locator("#live")).to_have_text("live")
        stored = page.evaluate("sessionStorage.getItem('modelyard.adminKey')")
        assert stored == key
        assert page.evaluate("localStorage.length") == 0

        # Cancelling leaves the page usable and says why nothing shows.
        fresh = page.context.browser
        assert fresh is not None
        other = fresh.new_context().new_page()
        try:
            other.goto(server.url + "/#models")
            other.get_by_role("button", name="Cancel").click()
            expect(other.locator("#errors")).to_contain_text("admin key")
        finally:
            other.context.close()


def test_thinking_override_is_set_and_cleared(page: Page, tmp_path: Path) -> None:
    """The thinking toggle marks the override, and "use detected" gives detection back. The
    cell reads as words: it read "on * auto", which looked like a value, not a choice."""
    with serve(tmp_path / "srv") as server:
        page.goto(server.url + "/#models")
        row = page.locator("#models-body tr").first
        cell = row.locator('td[data-label="Thinking"]')
        toggle = row.get_by_role("switch")
        expect(toggle).not_to_be_checked()  # no bundled model is a thinking model
        expect(cell).to_have_text(re.compile(r"^\s*off \(detected\)\s*$"))
        toggle.check()
        reset = row.locator("button.reset-thinking")
        expect(reset).to_be_visible()
        expect(toggle).to_be_checked()
        expect(cell).to_have_text(re.compile(r"^\s*on \(set by you\) use detected\s*$"))
        reset.click()
        expect(reset).to_have_count(0)
        expect(toggle).not_to_be_checked()
        expect(cell).to_have_text(re.compile(r"^\s*off \(detected\)\s*$"))
        model_id = row.get_attribute("data-id")
        models = httpx.get(server.url + "/api/models/registry", timeout=10).json()["models"]
        (model,) = [m for m in models if m["id"] == model_id]
        assert model["thinking"] is False and model["thinking_overridden"] is False
