"""Preset routes: built-ins, the user's own added and removed."""

from __future__ import annotations

from tests.api.conftest import Api, expect


async def test_presets_list_add_remove(api: Api) -> None:
    c = api.client
    names = [p["name"] for p in expect(await c.get("/api/instances/presets"), 200)]
    assert names == ["concise", "researcher", "coder"]
    new = {"name": "pirate", "title": "Pirate", "prompt": "Arr."}
    added = expect(await c.post("/api/instances/presets", json=new), 201)
    assert added["source"] == "user"
    expect(await c.post("/api/instances/presets", json=new), 409)
    expect(await c.post("/api/instances/presets", json={**new, "name": "Bad Name"}), 400)
    expect(await c.post("/api/instances/presets", json={"name": "x", "title": "t"}), 400)
    expect(await c.delete("/api/instances/presets/coder"), 409)
    expect(await c.delete("/api/instances/presets/pirate"), 204)
    expect(await c.delete("/api/instances/presets/pirate"), 404)
    actions = [e["action"] for e in api.services.store.audit_log()]
    assert actions[:2] == ["preset.remove", "preset.add"]
