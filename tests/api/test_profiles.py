"""Profile routes: list, create, read, update (with versions), delete, activate."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.conftest import Api, expect


def body(name: str = "duo", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "alpha and beta",
        "enabled_models": ["alpha", "beta"],
        "tier_config": [{"name": "fast", "max_score": None, "expected_time_seconds": 2}],
        "instances": [{"model": "alpha"}, {"model": "beta", "preset": "coder", "count": 2}],
        **extra,
    }


async def test_examples_are_listed_on_first_use(api: Api) -> None:
    listing = expect(await api.client.get("/api/models/profiles"), 200)
    names = [p["name"] for p in listing["profiles"]]
    assert names == ["development", "fast-only", "production"]
    assert listing["active"] is None
    # The bundled model is not in this synthetic catalog: each example says so.
    dev = next(p for p in listing["profiles"] if p["name"] == "development")
    assert not dev["valid"]
    assert "unknown model 'qwen2.5-coder-0.5b-instruct-awq-q4_k_m'" in dev["problems"][0]


async def test_create_read_update_delete_with_versions(api: Api) -> None:
    c = api.client
    created = await c.post("/api/models/profiles", json=body())
    data = expect(created, 201)
    assert data["valid"] and data["profile"]["instances"][1]["count"] == 2
    etag = created.headers["etag"]
    expect(await c.post("/api/models/profiles", json=body()), 409)
    got = await c.get("/api/models/profiles/duo")
    assert got.headers["etag"] == etag
    changed = body(description="changed")
    updated = await c.put("/api/models/profiles/duo", json=changed, headers={"If-Match": etag})
    assert expect(updated, 200)["profile"]["description"] == "changed"
    stale = await c.put("/api/models/profiles/duo", json=body(), headers={"If-Match": etag})
    assert expect(stale, 409)["error"]["param"] == "If-Match"
    expect(await c.put("/api/models/profiles/duo", json=body("other")), 400)
    expect(await c.delete("/api/models/profiles/duo"), 204)
    expect(await c.get("/api/models/profiles/duo"), 404)
    expect(await c.put("/api/models/profiles/duo", json=body()), 404)
    actions = [e["action"] for e in api.services.store.audit_log()]
    assert actions[:3] == ["profile.delete", "profile.update", "profile.create"]


async def test_a_bad_profile_names_every_problem(api: Api) -> None:
    bad = body(
        enabled_models=["alpha", "ghost"],
        load_balancing={"strategy": "dice"},
        instances=[{"model": "phantom", "count": 0}],
    )
    response = await api.client.post("/api/models/profiles", json=bad)
    error = expect(response, 400)["error"]
    for part in ("load_balancing.strategy", "instances[0].count"):
        assert part in error["message"]
    fixed_shape = body(enabled_models=["alpha", "ghost"], instances=[{"model": "phantom"}])
    error = expect(await api.client.post("/api/models/profiles", json=fixed_shape), 400)["error"]
    assert error["problems"] == [
        "enabled_models[1]: unknown model 'ghost'",
        "instances[0].model: unknown model 'phantom'",
        "instances[0].model: 'phantom' is not in enabled_models",
    ]
    expect(await api.client.get("/api/models/profiles/Not_A_Name"), 400)
    expect(await api.client.post("/api/models/profiles/nope/activate"), 404)


async def test_two_concurrent_updates_with_one_version_one_lands_one_409(api: Api) -> None:
    c = api.client
    etag = (await c.post("/api/models/profiles", json=body())).headers["etag"]
    results = await asyncio.gather(
        c.put("/api/models/profiles/duo", json=body(description="one"), headers={"If-Match": etag}),
        c.put("/api/models/profiles/duo", json=body(description="two"), headers={"If-Match": etag}),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    winner = next(r for r in results if r.status_code == 200).json()["profile"]["description"]
    got = expect(await c.get("/api/models/profiles/duo"), 200)
    assert got["profile"]["description"] == winner


async def test_activation_enables_creates_starts_and_stops(api: Api) -> None:
    c = api.client
    expect(await c.post("/api/models/profiles", json=body()), 201)
    dry = expect(await c.post("/api/models/profiles/duo/activate", params={"dry_run": True}), 200)
    assert dry["dry_run"] and len(dry["create"]) == 3 and dry["created"] == []
    assert api.services.fleet.instances() == []
    done = expect(await c.post("/api/models/profiles/duo/activate"), 200)
    assert done["failed"] == []
    assert sorted(done["created"]) == ["alpha:01", "beta:01", "beta:02"]
    views = {v.id: v for v in api.services.fleet.instances()}
    assert {i: v.state for i, v in views.items()} == dict.fromkeys(views, "ready")
    assert views["beta:01"].config.system_prompt is not None
    assert expect(await c.get("/api/models/profiles"), 200)["active"] == "duo"
    expect(await c.delete("/api/models/profiles/duo"), 409)

    solo = {"name": "solo", "enabled_models": ["beta"], "instances": [{"model": "beta"}]}
    expect(await c.post("/api/models/profiles", json=solo), 201)
    switched = expect(await c.post("/api/models/profiles/solo/activate"), 200)
    assert switched["disable"] == ["alpha"]
    assert sorted(switched["stop"]) == ["alpha:01", "beta:01", "beta:02"]
    assert len(switched["created"]) == 1
    states = {v.id: v.state for v in api.services.fleet.instances()}
    assert states["alpha:01"] == "stopped" and states[switched["created"][0]] == "ready"
    registry = expect(await c.get("/api/models/registry"), 200)
    assert {m["id"]: m["enabled"] for m in registry["models"]} == {
        "alpha": False,
        "beta": True,
        "gamma": False,
    }
    back = expect(await c.post("/api/models/profiles/duo/activate"), 200)
    assert back["created"] == [] and sorted(back["start"]) == ["alpha:01", "beta:01", "beta:02"]
    log = api.services.store.audit_log(500)
    assert any(e["action"] == "profile.activate" and e["new"] == "duo" for e in log)
