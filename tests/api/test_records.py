"""Servers, statistics, export/import and the audit log."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api, api_settings, expect, serving


async def test_servers_show_every_instance(api: Api) -> None:
    empty = expect(await api.client.get("/api/models/servers"), 200)
    assert (empty["total"], empty["ready"], empty["servers"]) == (0, 0, [])
    views = await api.services.fleet.create("beta", {"display_name": "b"}, 2, actor="t")
    await api.services.fleet.start_instance(views[0].id)
    body = expect(await api.client.get("/api/models/servers"), 200)
    assert (body["total"], body["ready"], body["running"]) == (2, 1, 1)
    first = body["servers"][0]
    assert first["id"] == "beta:01" and first["ready"] and first["pid"] and first["port"]
    assert first["uptime_s"] is not None and first["display_name"] == "b"
    (ram,) = body["devices"]  # memory set by hand: 16 GiB of RAM, no GPU
    assert ram["index"] is None and ram["total_bytes"] == 16 * 1024**3
    assert ram["used_by_instances_bytes"] == first["memory_estimate_bytes"] > 0


async def test_statistics_follow_gateway_requests(api: Api) -> None:
    views = await api.services.fleet.create("beta", {}, 1, actor="t")
    await api.services.fleet.start_instance(views[0].id)
    chat = {"model": "beta", "messages": [{"role": "user", "content": "hi"}]}
    expect(await api.client.post("/v1/chat/completions", json=chat), 200)
    stats = expect(await api.client.get("/api/models/statistics"), 200)
    assert stats["total"]["requests"] == 1
    assert stats["models"]["beta"]["instances"]["beta:01"]["successes"] == 1
    await api.services.figures.flush()
    history = expect(
        await api.client.get("/api/models/statistics/history?model_id=beta&bucket_s=60"), 200
    )
    assert [(b["requests"], b["successes"]) for b in history["buckets"]] == [(1, 1)]
    other = await api.client.get("/api/models/statistics/history?model_id=nobody")
    assert expect(other, 200)["buckets"] == []
    assert (await api.client.get("/api/models/statistics/history?bucket_s=0")).status_code == 400


async def test_export_import_round_trip_and_a_bad_file_changes_nothing(api: Api) -> None:
    c = api.client
    expect(await c.put("/api/models/alpha/tier", json={"tier": "fast"}), 200)
    exported = expect(await c.post("/api/models/export"), 200)
    assert exported["overrides"] == {"alpha": {"tier": "fast"}}
    expect(await c.delete("/api/models/alpha/overrides/tier"), 200)
    result = expect(await c.post("/api/models/import", json=exported), 200)
    assert result == {"imported": True, "overrides": 1, "curated": 3}
    assert api.services.catalog.overrides_for("alpha").tier == "fast"
    bad = {**exported, "overrides": {"alpha": {"tier": "enormous"}, "beta": {"tier": "fast"}}}
    error = expect(await c.post("/api/models/import", json=bad), 400)["error"]
    assert "tier" in error["message"]
    wrong_format = expect(await c.post("/api/models/import", json={"format": "x"}), 400)
    assert wrong_format["error"]["param"] == "format"
    assert api.services.catalog.overrides_for("beta").tier is None
    assert api.services.catalog.overrides_for("alpha").tier == "fast"


async def test_audit_filters_and_pages(api: Api) -> None:
    c = api.client
    for tier in ("fast", "balanced", "powerful"):
        expect(await c.put("/api/models/beta/tier", json={"tier": tier}), 200)
    expect(
        await c.post("/api/instances/presets", json={"name": "p", "title": "t", "prompt": "x"}), 201
    )
    page = expect(await c.get("/api/audit", params={"action": "override", "limit": 2}), 200)
    assert [e["new"]["tier"] for e in page["entries"]] == ["powerful", "balanced"]
    older = expect(
        await c.get(
            "/api/audit",
            params={"action": "override", "limit": 2, "before_id": page["next_before_id"]},
        ),
        200,
    )
    assert [e["new"]["tier"] for e in older["entries"]] == ["fast"]
    assert older["next_before_id"] is None
    by_target = expect(await c.get("/api/audit", params={"target": "p"}), 200)
    assert [e["action"] for e in by_target["entries"]] == ["preset.add"]
    expect(await c.get("/api/audit", params={"limit": 0}), 400)


async def test_deployment_from_hardware_config_and_profile(tmp_path: Path) -> None:
    async with serving(api_settings(tmp_path / "cfg", deployment={})) as api:
        await _deployment_layers(api)


async def _deployment_layers(api: Api) -> None:
    c = api.client
    suggested = expect(await c.get("/api/models/deployment"), 200)
    assert (suggested["device"], suggested["source"]) == ("cpu", "suggested")
    assert suggested["memory_budget_bytes"] == 8 * 1024**3  # half of 16 GiB RAM, no reserve
    profile = {
        "name": "lean",
        "enabled_models": ["beta"],
        "deployment": {"max_models_loaded": 1},
    }
    expect(await c.post("/api/models/profiles", json=profile), 201)
    expect(await c.post("/api/models/profiles/lean/activate"), 200)
    pinned = expect(await c.get("/api/models/deployment"), 200)
    assert (pinned["max_models_loaded"], pinned["source"], pinned["profile"]) == (
        1,
        "profile",
        "lean",
    )
