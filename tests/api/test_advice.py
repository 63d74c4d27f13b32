"""Advice routes: recommendations, compatibility checks, role selection."""

from __future__ import annotations

from tests.api.conftest import GIB, Api, expect


async def test_recommend_by_priority_and_memory(api: Api) -> None:
    c = api.client
    quality = expect(
        await c.post("/api/models/recommend", json={"memory_gb": 8, "priority": "quality"}), 200
    )
    assert quality["recommended"]["model_id"] == "alpha"
    assert any("needs about" in r for r in quality["recommended"]["reasons"])
    assert "gamma" in [a["model_id"] for a in quality["alternatives"]]
    speed = expect(
        await c.post("/api/models/recommend", json={"memory_gb": 8, "priority": "speed"}), 200
    )
    assert speed["recommended"]["model_id"] == "beta"
    small = expect(await c.post("/api/models/recommend", json={"memory_gb": 2}), 200)
    assert small["recommended"]["model_id"] == "beta"
    none = expect(await c.post("/api/models/recommend", json={"memory_gb": 0.5}), 200)
    assert none["recommended"] is None and "no model fits" in none["reasons"][0]


async def test_recommend_wrong_bodies(api: Api) -> None:
    for bad in ({"memory_gb": -1}, {"memory_gb": 8, "priority": "cheap"}, {}):
        response = await api.client.post("/api/models/recommend", json=bad)
        error = expect(response, 400)["error"]
        assert error["code"] == "invalid_value"
        assert error["param"] == ("priority" if "priority" in bad else "memory_gb")


async def test_compatibility_says_what_would_have_to_stop(api: Api) -> None:
    c = api.client
    fits = expect(await c.post("/api/models/check_compatibility", json={"model": "alpha"}), 200)
    assert fits["fits"] and fits["would_stop"] == []
    assert fits["estimate"]["total_bytes"] == 4 * GIB and fits["budget_bytes"] == 16 * GIB
    views = await api.services.fleet.create("alpha", {}, 4, actor="test")
    for view in views:
        await api.services.fleet.start_instance(view.id)
    tight = expect(await c.post("/api/models/check_compatibility", json={"model": "alpha"}), 200)
    assert not tight["fits"] and tight["fits_after_stopping"]
    assert tight["would_stop"] == ["alpha:01"]
    huge = expect(await c.post("/api/models/check_compatibility", json={"model": "gamma"}), 200)
    assert not huge["fits_after_stopping"] and "more than the whole budget" in huge["reason"]
    expect(await c.post("/api/models/check_compatibility", json={"model": "nope"}), 404)
    expect(await c.post("/api/models/check_compatibility", json={"model": "alpha", "ctx": 1}), 400)


async def test_select_by_role(api: Api) -> None:
    c = api.client
    code = expect(await c.get("/v1/models/select_by_role", params={"role": "code"}), 200)
    assert (code["model"], code["priority"], code["source"]) == ("alpha", 80, "catalog")
    assert code["memory_estimate_bytes"] == 4 * GIB
    assert [x["model_id"] for x in code["candidates"]] == ["alpha", "beta"]
    expect(await c.get("/v1/models/select_by_role", params={"role": "dance"}), 404)
    expect(await c.get("/v1/models/select_by_role"), 400)
    profile = {
        "name": "pin",
        "enabled_models": ["alpha", "beta"],
        "defaults": {"roles": {"code": "beta"}},
    }
    expect(await c.post("/api/models/profiles", json=profile), 201)
    expect(await c.post("/api/models/profiles/pin/activate"), 200)
    pinned = expect(await c.get("/v1/models/select_by_role", params={"role": "code"}), 200)
    assert (pinned["model"], pinned["source"]) == ("beta", "profile")
