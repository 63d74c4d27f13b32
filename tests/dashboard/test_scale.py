"""How fast the dashboard draws a large catalog and follows live changes: 200 models (synthetic
GGUF files) and 20 instances (created through the API, never started). Prints the figures;
asserts only that everything shows."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.dashboard.harness import Server, serve
from tests.support.ggufs import write_gguf

MODELS = 200
INSTANCES = 20
ROUNDS = 5
FAMILIES = ("llama", "qwen2.5-coder", "mistral", "deepseek-r1", "phi")
SIZES = ("1b", "3b", "7b", "8b", "14b", "32b")
QUANTS = ("q4_k_m", "q8_0", "q2_k")

# Records, in the page, the wall-clock time at which `check()` first holds after a DOM change.
WATCH = """([selector, expected, attr]) => {
  window.__seenAt = null;
  const check = () => {
    const el = document.querySelector(selector);
    if (!el) return false;
    return attr === null ? true : (el[attr] ?? el.getAttribute(attr)) === expected;
  };
  const observer = new MutationObserver(() => {
    if (window.__seenAt === null && check()) {
      window.__seenAt = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, { subtree: true, childList: true, attributes: true });
}"""


def write_models(folder: Path) -> None:
    folder.mkdir(parents=True)
    for n in range(MODELS):
        family = FAMILIES[n % len(FAMILIES)]
        size = SIZES[n % len(SIZES)]
        quant = QUANTS[n % len(QUANTS)]
        write_gguf(
            folder / f"{family}-{n:03d}-{size}-instruct-{quant}.gguf",
            name=f"{family} {n:03d}",
            size_label=size.upper(),
        )


def create_instances(server: Server, models: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    with server.client() as client:
        for model in models[:INSTANCES]:
            response = client.post("/api/instances", json={"model": model["id"]})
            assert response.status_code == 201, response.text
            ids.extend(view["id"] for view in response.json())
    return ids


def timed_update(
    page: Page, selector: str, expected: str | None, attr: str | None, act: Any
) -> float:
    """Milliseconds from the change sent to the API until the page shows it."""
    page.evaluate(WATCH, [selector, expected, attr])
    sent = time.time() * 1000
    act()
    page.wait_for_function("window.__seenAt !== null", timeout=15_000)
    seen: float = page.evaluate("window.__seenAt")
    return seen - sent


def test_large_catalog_renders_and_updates(page: Page, tmp_path: Path, artifacts: Path) -> None:
    write_models(tmp_path / "ggufs")
    with serve(
        tmp_path / "srv",
        discovery={"default_model": False, "folders": [str(tmp_path / "ggufs")]},
    ) as server:
        with server.client(timeout=120) as client:
            registry = client.get("/api/models/registry").json()
        models = registry["models"]
        assert len(models) == MODELS
        instance_ids = create_instances(server, models)
        assert len(instance_ids) == INSTANCES

        loads = []
        for _ in range(3):
            page.goto("about:blank")
            page.goto(server.url + "/#models")
            expect(page.locator("#models-body tr[data-id]")).to_have_count(MODELS)
            loads.append(
                page.evaluate(
                    """() => ({
                      rendered: Number(document.body.dataset.modelsRenderedAt),
                      dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
                      registry: performance.getEntriesByType('resource')
                        .filter((e) => e.name.endsWith('/api/models/registry'))
                        .map((e) => e.responseEnd - e.startTime)[0] ?? NaN,
                    })"""
                )
            )
        page.screenshot(path=artifacts / "scale-models-200.png")

        # A tier override sent by another client shows up through the event stream.
        target = models[MODELS // 2]["id"]
        row = f'#models-body tr[data-id="{target}"] select'
        tier_ms = []
        with server.client() as client:
            for n in range(ROUNDS):
                tier = ("fast", "powerful")[n % 2]
                tier_ms.append(
                    timed_update(
                        page,
                        row,
                        tier,
                        "value",
                        lambda tier=tier: client.put(
                            f"/api/models/{target}/tier", json={"tier": tier}
                        ).raise_for_status(),
                    )
                )

        # A new instance created by another client appears in the Instances tab.
        page.get_by_role("tab", name="Instances").click()
        expect(page.locator("#instance-groups tr[data-id]")).to_have_count(INSTANCES)
        page.screenshot(path=artifacts / "scale-instances-20.png")
        instance_ms = []
        with server.client() as client:
            for n in range(ROUNDS):
                model_id = models[n]["id"]
                expected_id = f"{model_id}:02"
                instance_ms.append(
                    timed_update(
                        page,
                        f'#instance-groups tr[data-id="{expected_id}"]',
                        None,
                        None,
                        lambda model_id=model_id: client.post(
                            "/api/instances", json={"model": model_id}
                        ).raise_for_status(),
                    )
                )

    print()
    print(f"dashboard with {MODELS} models and {INSTANCES} instances:")
    for n, load in enumerate(loads, 1):
        print(
            f"  load {n}: models table drawn {load['rendered']:.0f} ms after navigation start "
            f"(DOMContentLoaded {load['dcl']:.0f} ms; GET /api/models/registry took "
            f"{load['registry']:.0f} ms)"
        )
    first = statistics.median(load["rendered"] for load in loads)
    print(f"  first render, median of 3 loads: {first:.0f} ms")
    print(
        f"  tier change by another client -> row updated: median "
        f"{statistics.median(tier_ms):.0f} ms, max {max(tier_ms):.0f} ms "
        f"({', '.join(f'{t:.0f}' for t in tier_ms)})"
    )
    print(
        f"  instance created by another client -> row shown: median "
        f"{statistics.median(instance_ms):.0f} ms, max {max(instance_ms):.0f} ms "
        f"({', '.join(f'{t:.0f}' for t in instance_ms)})"
    )
