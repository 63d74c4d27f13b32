"""The whole dashboard against ``modelyard serve`` with the real llama-server and Gemma model:
rescan, enable, add two instances, set a persona from a preset, start them, chat in the
playground and see which instance answered, see the usage figures move, switch profile.
A screenshot of every page goes to artifacts/dashboard/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.harness import Server, serve

READY_TIMEOUT_MS = 90_000
ANSWER_TIMEOUT_MS = 90_000


def bundled_model(server: Server) -> dict[str, Any]:
    with server.client() as client:
        response = client.get("/api/models/registry")
        response.raise_for_status()
        models: list[dict[str, Any]] = response.json()["models"]
    # The bundled fast chat model: the quickest real one to start and answer.
    found = [m for m in models if m["source"] == "default" and m["id"].startswith("smollm2")]
    assert found, f"the bundled SmolLM2 was not discovered: {[m['id'] for m in models]}"
    return found[0]


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.locator(f"#panel-{name.lower()}")).to_be_visible()


@pytest.mark.llama
def test_dashboard_end_to_end(page: Page, tmp_path: Path, artifacts: Path) -> None:
    with serve(tmp_path / "srv") as server:
        page.goto(server.url + "/")
        expect(page.locator("#live")).to_have_text("live")
        page.screenshot(path=artifacts / "01-status-empty.png")

        # Rescan, with its result shown in words.
        open_tab(page, "Models")
        page.get_by_role("button", name="Rescan").click()
        expect(page.locator("#rescan-status")).to_contain_text("Rescan done", timeout=60_000)
        model = bundled_model(server)
        mid = model["id"]
        row = page.locator(f'#models-body tr[data-id="{mid}"]')
        expect(row).to_be_visible()

        # Enable it (off first if discovery enabled it, so the click is what turns it on).
        enable = row.get_by_role("checkbox", name=re.compile(r"^Enable "))
        if enable.is_checked():
            enable.uncheck()
            expect(page.locator(f'#models-body tr[data-id="{mid}"]')).to_have_class("disabled")
        page.locator(f'#models-body tr[data-id="{mid}"]').get_by_role(
            "checkbox", name=re.compile(r"^Enable ")
        ).check()
        expect(page.locator(f'#models-body tr[data-id="{mid}"]')).not_to_have_class("disabled")
        page.screenshot(path=artifacts / "02-models.png")

        # Two instances through the + button; the count badge follows.
        open_tab(page, "Instances")
        group = page.locator(f'section.group[data-model="{mid}"]')
        add = group.get_by_role("button", name=re.compile(r"^Add an instance"))
        add.click()
        expect(group.locator(".count")).to_have_text("1")
        page.locator(f'section.group[data-model="{mid}"]').get_by_role(
            "button", name=re.compile(r"^Add an instance")
        ).click()
        expect(page.locator(f'section.group[data-model="{mid}"] .count')).to_have_text("2")
        first, second = f"{mid}:01", f"{mid}:02"

        # A persona from a preset, with the live counter and the unsaved-changes flag.
        page.get_by_role("button", name=f"Edit {first}").click()
        editor = page.locator("#instance-editor")
        expect(editor).to_be_visible()
        expect(page.locator("#edit-dirty")).to_be_hidden()
        page.get_by_label("Display name").fill("Brief helper")
        page.get_by_label("Start from a preset").select_option("concise")
        expect(page.get_by_label("System prompt")).to_have_value(re.compile("concise assistant"))
        expect(page.locator("#edit-prompt-count")).to_have_text(re.compile(r"^\d+ / 4096$"))
        expect(page.locator("#edit-dirty")).to_be_visible()
        page.screenshot(path=artifacts / "03-instance-editor.png")
        editor.get_by_role("button", name="Save").click()
        expect(editor).to_be_hidden()
        persona_row = page.locator(f'tr[data-id="{first}"]')
        expect(persona_row.locator(".inst-name")).to_have_text("Brief helper")
        expect(persona_row.locator(".b-persona")).to_be_visible()

        # Start both; their status turns ready from the event stream.
        page.get_by_role("button", name=f"Start {first}").click()
        page.get_by_role("button", name=f"Start {second}").click()
        for iid in (first, second):
            expect(page.locator(f'tr[data-id="{iid}"] .status')).to_have_text(
                "ready", timeout=READY_TIMEOUT_MS
            )
        expect(page.locator(f'tr[data-id="{first}"] td').nth(1)).to_have_text(re.compile(r"\d"))
        page.screenshot(path=artifacts / "04-instances.png")

        open_tab(page, "Status")
        expect(page.locator("#count-ready .card-value")).to_have_text("2")
        page.screenshot(path=artifacts / "05-status.png")

        # Chat through the gateway; the page says which instance answered and why.
        open_tab(page, "Playground")
        page.get_by_label("Send to").select_option(first)
        page.get_by_label("Max tokens").fill("24")
        page.get_by_label("Message", exact=True).fill("Say hello in five words.")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#play-instance")).to_have_text(first, timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator("#play-why")).not_to_be_empty()
        answer = page.locator(".msg.assistant .text").last
        expect(answer).not_to_be_empty(timeout=ANSWER_TIMEOUT_MS)
        expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)
        page.get_by_label("Send to").select_option(mid)
        page.get_by_label("Message", exact=True).fill("And in three words?")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator("#play-instance")).to_have_text(
            re.compile(rf"^{re.escape(mid)}:0[12]$")
        )
        page.screenshot(path=artifacts / "06-playground.png")

        # The usage figures moved.
        open_tab(page, "Usage")
        requests = page.locator(f'#usage-table tr[data-id="{mid}"] .requests')
        expect(requests).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=20_000)
        expect(page.locator("#chart-requests svg")).to_be_visible(timeout=20_000)
        page.screenshot(path=artifacts / "07-usage.png", full_page=True)

        # The log of the first instance, following.
        open_tab(page, "Logs")
        page.get_by_label("Instance", exact=True).select_option(first)
        expect(page.locator("#logs-output")).to_contain_text(re.compile(r"\S"))
        page.screenshot(path=artifacts / "08-logs.png")

        # Profiles: create one from the current state, then switch to a shipped example.
        open_tab(page, "Profiles")
        page.get_by_label("Name", exact=True).fill("dashboard-e2e")
        page.get_by_label("Description").fill("made by the dashboard test")
        page.get_by_role("button", name="Create profile").click()
        expect(page.locator('#profile-list li[data-name="dashboard-e2e"]')).to_be_visible()
        page.get_by_role("button", name="Activate profile dashboard-e2e").click()
        expect(page.locator("#profile-result")).to_contain_text(
            "Profile dashboard-e2e is active", timeout=READY_TIMEOUT_MS
        )
        expect(page.locator("#active-profile")).to_have_text("dashboard-e2e")
        page.get_by_role("button", name="Activate profile fast-only").click()
        expect(page.locator("#profile-result")).to_contain_text(
            "Profile fast-only is active", timeout=READY_TIMEOUT_MS
        )
        expect(page.locator("#active-profile")).to_have_text("fast-only")
        page.screenshot(path=artifacts / "09-profiles.png", full_page=True)
        server.remember_tree()
