"""Instance routes: create (with presets), read, change (versions, concurrency), start, stop,
restart, health, logs, delete; unknown ids and wrong bodies."""

from __future__ import annotations

import asyncio

from tests.api.conftest import Api, expect


async def test_instance_lifecycle_over_http(api: Api) -> None:
    c = api.client
    created = expect(
        await c.post("/api/instances", json={"model": "beta", "count": 2, "preset": "concise"}),
        201,
    )
    assert [i["id"] for i in created] == ["beta:01", "beta:02"]
    assert created[0]["config"]["system_prompt"].startswith("You are a concise assistant")
    listed = expect(await c.get("/api/instances"), 200)
    assert [i["state"] for i in listed] == ["stopped", "stopped"]
    started = expect(await c.post("/api/instances/beta:01/start"), 200)
    assert started["state"] == "ready" and started["pid"]
    health = expect(await c.get("/api/instances/beta:01/health"), 200)
    assert (health["ready"], health["desired"]) == (True, "running")
    logs = expect(await c.get("/api/instances/beta:01/logs", params={"lines": 5}), 200)
    assert logs["id"] == "beta:01" and isinstance(logs["lines"], list)
    restarted = expect(await c.post("/api/instances/beta:01/restart"), 200)
    assert restarted["state"] == "ready"
    stopped = expect(await c.post("/api/instances/beta:01/stop"), 200)
    assert stopped["state"] == "stopped"
    expect(await c.delete("/api/instances/beta:02"), 204)
    expect(await c.get("/api/instances/beta:02"), 404)
    actions = [e["action"] for e in api.services.store.audit_log(50)]
    assert actions  # the fleet audits each change under the caller's name
    assert all(e["actor"] == "local" for e in api.services.store.audit_log(50))


async def test_settings_changes_with_versions_and_at_once(api: Api) -> None:
    c = api.client
    expect(await c.post("/api/instances", json={"model": "alpha"}), 201)
    got = await c.get("/api/instances/alpha:01")
    etag = got.headers["etag"]
    changed = await c.put(
        "/api/instances/alpha:01", json={"display_name": "writer"}, headers={"If-Match": etag}
    )
    assert expect(changed, 200)["config"]["display_name"] == "writer"
    stale = await c.put(
        "/api/instances/alpha:01", json={"web_search": True}, headers={"If-Match": etag}
    )
    assert expect(stale, 409)["error"]["param"] == "If-Match"
    results = await asyncio.gather(
        c.put("/api/instances/alpha:01", json={"system_prompt": "Write."}),
        c.put("/api/instances/alpha:01", json={"web_search": True}),
        c.patch("/api/instances/alpha:01", json={"idle_ttl": 30}),
    )
    assert [r.status_code for r in results] == [200, 200, 200]
    config = expect(await c.get("/api/instances/alpha:01"), 200)["config"]
    assert (config["system_prompt"], config["web_search"], config["idle_ttl"]) == (
        "Write.",
        True,
        30.0,
    )
    assert config["display_name"] == "writer"


async def test_wrong_bodies_and_unknown_ids(api: Api) -> None:
    c = api.client
    expect(await c.post("/api/instances", json={"model": "beta", "count": 0}), 400)
    expect(await c.post("/api/instances", json={"count": 1}), 400)
    expect(await c.post("/api/instances", json={"model": "nope"}), 404)
    expect(await c.post("/api/instances", json={"model": "beta", "preset": "nope"}), 404)
    bad = await c.post("/api/instances", json={"model": "beta", "config": {"colour": 1}})
    assert expect(bad, 400)["error"]["param"] == "config.colour"
    expect(await c.post("/api/instances", json={"model": "beta"}), 201)
    wrong = await c.put("/api/instances/beta:01", json={"web_search": "yes"})
    assert expect(wrong, 400)["error"]["param"] == "web_search"
    for method, path in (
        ("GET", "/api/instances/nope:01"),
        ("PUT", "/api/instances/nope:01"),
        ("DELETE", "/api/instances/nope:01"),
        ("POST", "/api/instances/nope:01/start"),
        ("POST", "/api/instances/nope:01/stop"),
        ("GET", "/api/instances/nope:01/health"),
        ("GET", "/api/instances/nope:01/logs"),
    ):
        response = await c.request(method, path, json={} if method == "PUT" else None)
        assert response.status_code == 404, (method, path, response.text)
