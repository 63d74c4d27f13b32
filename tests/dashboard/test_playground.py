"""The playground in Chromium, through the real gateway to fake backends run by the command
engine: answers rendered as Markdown (safely), a thinking model's reasoning shown apart and
collapsed, and a failed request told inside the playground, not in the page's banner."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.dashboard.harness import Server, serve
from tests.gateway.harness import FAKE_BACKEND

MARKDOWN = """# Plan

Some *emphasis* and `inline code` here,
on two lines.

- first item
- second **bold** item
  - nested item

1. one
2. two

```python
print("**not bold**")
```

| name | size |
|------|-----:|
| a    | 1    |

<img src=x onerror="window.__pwned = 1"> and [a script](javascript:window.__pwned=2) stay text.
"""
REASONING = "The user wants a number. Forty-two is the classic answer."
ANSWER = "The answer is **42**."


def fake(model_id: str, *flags: str) -> dict[str, Any]:
    """A curated model answered by the fake backend with ``flags`` (each one word, quoted)."""
    words = " ".join(shlex.quote(flag) for flag in flags)
    command = f"{sys.executable} {FAKE_BACKEND} --port ${{PORT}} --model ${{INSTANCE_ID}} {words}"
    return {"id": model_id, "engine": "command", "command": command, "tier": "fast"}


def send(page: Page, target: str, text: str) -> None:
    page.get_by_label("Send to").select_option(target)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=30_000)


def received(server: Server, model_id: str) -> list[Any]:
    """Every request body the model's fake backend received, oldest first."""
    with server.client() as client:
        [instance] = [i for i in client.get("/api/instances").json() if i["model_id"] == model_id]
    answer = httpx.get(f"http://127.0.0.1:{instance['port']}/_received", timeout=10)
    bodies: list[Any] = answer.json()
    return bodies


def test_an_answer_is_rendered_as_markdown_and_never_as_html(
    page: Page, tmp_path: Path, artifacts: Path
) -> None:
    """Prevents the playground showing a model's Markdown as raw asterisks and backticks, and
    prevents rendering it from letting model output inject HTML (an <img onerror>, a
    javascript: link)."""
    with serve(tmp_path / "srv", curated=[fake("writer", "--respond", MARKDOWN)]) as server:
        page.goto(server.url + "/#playground")
        send(page, "writer", "Write a plan.")
        answer = page.locator(".msg.assistant .text").last
        expect(answer.locator("h1")).to_have_text("Plan")
        expect(answer.locator("p em")).to_have_text("emphasis")
        expect(answer.locator("p code")).to_have_text("inline code")
        expect(answer.locator("p br")).to_have_count(1)
        expect(answer.locator(":scope > ul > li")).to_have_count(2)
        expect(answer.locator(":scope > ul > li").nth(1).locator("strong")).to_have_text("bold")
        expect(answer.locator("ul ul > li")).to_have_text("nested item")
        expect(answer.locator(":scope > ol > li")).to_have_text(["one", "two"])
        expect(answer.locator("pre > code")).to_have_text('print("**not bold**")')
        expect(answer.locator("pre > code")).to_have_attribute("data-language", "python")
        expect(answer.locator("table th")).to_have_text(["name", "size"])
        expect(answer.locator("table td")).to_have_text(["a", "1"])
        # Model output is text: no element made from it, no script run, no link to javascript:.
        expect(page.locator("#play-log img")).to_have_count(0)
        expect(page.locator("#play-log a")).to_have_count(0)
        expect(answer).to_contain_text('<img src=x onerror="window.__pwned = 1">')
        expect(answer).to_contain_text("[a script](javascript:window.__pwned=2)")
        assert page.evaluate("window.__pwned") is None
        rendered = answer.inner_text()
        assert "# Plan" not in rendered and "- first" not in rendered and "```" not in rendered
        page.screenshot(path=artifacts / "playground-markdown.png", full_page=True)


def test_reasoning_is_shown_apart_and_collapsed(
    page: Page, tmp_path: Path, artifacts: Path
) -> None:
    """Prevents a thinking model's reasoning (llama-server's `reasoning_content` deltas, or a
    `<think>` block in the content) being shown run into its answer, and being sent back to
    the model with the conversation."""
    models = [
        fake("thinker", "--reasoning", REASONING, "--respond", ANSWER),
        fake("tagger", "--respond", f"<think>\n{REASONING}\n</think>\n\n{ANSWER}"),
    ]
    with serve(tmp_path / "srv", curated=models) as server:
        page.goto(server.url + "/#playground")
        for number, target in enumerate(["thinker", "tagger"], start=1):
            send(page, target, "What is the answer?")
            bubble = page.locator(".msg.assistant").nth(number - 1)
            details = bubble.locator("details.reasoning")
            expect(details).to_be_visible()
            expect(details).not_to_have_attribute("open", "")
            expect(details.locator("summary")).to_have_text("Reasoning")
            expect(details.locator(".reasoning-text")).to_be_hidden()
            expect(details.locator(".reasoning-text")).to_have_text(REASONING)
            answer = bubble.locator(".text")
            expect(answer).to_have_text("The answer is 42.")
            expect(answer.locator("strong")).to_have_text("42")
            assert "think>" not in answer.inner_text()
        page.screenshot(path=artifacts / "playground-reasoning-collapsed.png")
        page.locator(".msg.assistant").last.locator("summary").click()
        expect(page.locator(".msg.assistant").last.locator(".reasoning-text")).to_be_visible()
        page.screenshot(path=artifacts / "playground-reasoning-open.png")

        # The next turn sends the answer back, not the reasoning.
        send(page, "tagger", "And again?")
        last = received(server, "tagger")[-1]["messages"]
        assistant = [m["content"] for m in last if m["role"] == "assistant"]
        assert assistant[-1] == ANSWER
        assert all("Forty-two" not in content for content in assistant)


def test_a_failed_request_is_told_in_the_playground_only(
    page: Page, tmp_path: Path, artifacts: Path
) -> None:
    """Prevents a failed playground request putting a banner on every tab of the dashboard:
    its error shows in the playground, in the answer's place."""
    with serve(tmp_path / "srv", curated=[fake("broken", "--fail-after", "0")]) as server:
        page.goto(server.url + "/#playground")
        send(page, "broken", "Hello?")
        error = page.locator(".msg.assistant .play-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("the gateway answered 5")
        expect(error).to_have_attribute("role", "alert")
        page.screenshot(path=artifacts / "playground-error.png")
        expect(page.locator("#errors .error")).to_have_count(0)
        for name in ["Status", "Models", "Instances", "Usage"]:
            page.get_by_role("tab", name=name).click()
            expect(page.locator(f"#panel-{name.lower()}")).to_be_visible()
            expect(page.locator("#errors .error")).to_have_count(0)
        page.get_by_role("tab", name="Playground").click()
        expect(error).to_be_visible()  # still there when coming back
