"""Catalog routes: registry, tiers, rescan, overrides (set, clear, wrong bodies, unknown ids)."""

from __future__ import annotations

import asyncio

from tests.api.conftest import Api, expect


async def test_registry_lists_every_model_with_counts(api: Api) -> None:
    body = expect(await api.client.get("/api/models/registry"), 200)
    assert [m["id"] for m in body["models"]] == ["alpha", "beta", "gamma"]
    assert (body["total"], body["enabled"]) == (3, 2)
    assert body["by_tier"] == {"balanced": 1, "fast": 1, "powerful": 1}


async def test_tiers_filter_and_an_unknown_tier_is_400(api: Api) -> None:
    fast = expect(await api.client.get("/api/models/tiers/fast"), 200)
    assert [m["id"] for m in fast] == ["beta"]
    assert expect(await api.client.get("/api/models/tiers/huge"), 400)["error"]["param"] == "tier"


async def test_overrides_set_clear_and_survive_a_rescan(api: Api) -> None:
    c = api.client
    model = expect(await c.put("/api/models/beta/tier", json={"tier": "powerful"}), 200)
    assert (model["tier"], model["tier_overridden"]) == ("powerful", True)
    expect(await c.put("/api/models/beta/thinking", json={"thinking": True}), 200)
    expect(await c.put("/api/models/beta/display_name", json={"display_name": "Bee"}), 200)
    expect(await c.put("/api/models/beta/roles", json={"roles": {"summary": 90}}), 200)
    model = expect(await c.put("/api/models/gamma/enabled", json={"enabled": True}), 200)
    assert model["enabled"] is True
    report = expect(await c.post("/api/models/rescan"), 200)
    assert report["removed"] == []
    beta = expect(await c.get("/api/models/tiers/powerful"), 200)
    bee = next(m for m in beta if m["id"] == "beta")
    assert (bee["thinking"], bee["display_name"]) == (True, "Bee")
    assert bee["roles"] == {"caption": 70, "code": 50, "summary": 90}
    cleared = expect(await c.delete("/api/models/beta/overrides/tier"), 200)
    assert (cleared["tier"], cleared["tier_overridden"]) == ("fast", False)
    log = api.services.store.audit_log()
    assert log[0]["action"] == "override.clear" and log[0]["actor"] == "local"
    assert log[0]["old"]["tier"] == "powerful" and "tier" not in log[0]["new"]


async def test_wrong_bodies_name_the_field(api: Api) -> None:
    c = api.client
    for path, body, field in (
        ("tier", {"tier": "huge"}, "tier"),
        ("thinking", {"thinking": "maybe"}, "thinking"),
        ("enabled", {}, "enabled"),
        ("roles", {"roles": {"code": "high"}}, "roles"),
        ("tier", {"tier": "fast", "colour": 1}, "colour"),
    ):
        error = expect(await c.put(f"/api/models/alpha/{path}", json=body), 400)["error"]
        assert error["param"].startswith(field), error
    bad_role = await c.put("/api/models/alpha/roles", json={"roles": {"code": 101}})
    assert expect(bad_role, 400)["error"]["param"].startswith("roles")
    expect(await c.delete("/api/models/alpha/overrides/colour"), 400)


async def test_unknown_model_is_404(api: Api) -> None:
    response = await api.client.put("/api/models/nope/tier", json={"tier": "fast"})
    body = expect(response, 404)
    assert body["error"]["code"] == "model_not_found"
    expect(await api.client.delete("/api/models/nope/overrides/tier"), 404)


async def test_rescan_with_a_missing_path_is_400(api: Api, tmp_path: object) -> None:
    response = await api.client.post("/api/models/rescan", json={"paths": ["/no/such/place"]})
    assert response.status_code == 400, response.text


async def test_two_concurrent_override_changes_both_land(api: Api) -> None:
    """Regression: two changes to one model at once must not lose either (read-modify-write
    outside a transaction would keep only the last)."""
    c = api.client
    results = await asyncio.gather(
        c.put("/api/models/alpha/tier", json={"tier": "fast"}),
        c.put("/api/models/alpha/thinking", json={"thinking": True}),
        c.put("/api/models/alpha/display_name", json={"display_name": "A"}),
    )
    assert [r.status_code for r in results] == [200, 200, 200]
    assert api.services.catalog.overrides_for("alpha").to_dict() == {
        "tier": "fast",
        "thinking": True,
        "display_name": "A",
    }


async def test_one_override_change_is_one_catalog_changed_event(api: Api) -> None:
    """Regression: the routes published catalog.changed beside the catalog's own, so one
    change reached the dashboard twice; a change that changes nothing now says nothing."""
    async with api.services.events.subscribe() as sub:
        expect(await api.client.put("/api/models/beta/tier", json={"tier": "powerful"}), 200)
        expect(await api.client.put("/api/models/beta/tier", json={"tier": "powerful"}), 200)
        expect(await api.client.delete("/api/models/beta/overrides/tier"), 200)
        exported = expect(await api.client.post("/api/models/export"), 200)
        exported["overrides"] = {"beta": {"display_name": "Bee"}}
        expect(await api.client.post("/api/models/import", json=exported), 200)
        events = []
        while (event := await sub.get(within_s=0.2)) is not None:
            events.append(event)
    changed = [e.data for e in events if e.kind == "catalog.changed"]
    assert [(d["cause"], d.get("set"), d.get("cleared")) for d in changed] == [
        ("override", ["tier"], None),
        ("override", None, "tier"),
        ("import", None, None),
    ]
    versions = [d["version"] for d in changed]
    assert versions == sorted(versions) and versions[-1] == api.services.catalog.snapshot().version
