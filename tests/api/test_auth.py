"""Access: admin keys for /api, inference keys refused there, loopback-only without keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.api.auth import check_bind, is_loopback
from modelyard.app import create_app
from modelyard.errors import ConfigError
from modelyard.services import build_services
from tests.api.conftest import ADMIN_KEY, INFERENCE_KEY, Api, api_settings, expect

ROUTES = (
    ("GET", "/api/models/registry"),
    ("GET", "/api/models/profiles"),
    ("GET", "/api/instances/presets"),
    ("GET", "/api/audit"),
    ("GET", "/api/models/servers"),
    ("POST", "/api/models/export"),
)


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_keys_decide_access(keyed_api: Api, method: str, path: str) -> None:
    c = keyed_api.client
    missing = await c.request(method, path)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    wrong = await c.request(method, path, headers={"Authorization": "Bearer not-a-key-at-all"})
    assert wrong.status_code == 401
    inference = await c.request(method, path, headers={"Authorization": f"Bearer {INFERENCE_KEY}"})
    assert inference.status_code == 403
    assert "inference key" in inference.json()["error"]["message"]
    admin = await c.request(method, path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200, admin.text
    also = await c.request(method, path, headers={"X-API-Key": ADMIN_KEY})
    assert also.status_code == 200


async def test_changes_are_audited_under_the_keys_name(keyed_api: Api) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    c = keyed_api.client
    expect(await c.put("/api/models/alpha/tier", json={"tier": "fast"}, headers=headers), 200)
    page = expect(await c.get("/api/audit", params={"actor": "alice"}, headers=headers), 200)
    entry = page["entries"][0]
    assert (entry["action"], entry["target"], entry["new"]) == (
        "override.set",
        "alpha",
        {"tier": "fast"},
    )
    assert entry["at"]


async def test_select_by_role_takes_an_inference_key(keyed_api: Api) -> None:
    c = keyed_api.client
    path = "/v1/models/select_by_role"
    expect(await c.get(path, params={"role": "code"}), 401)
    ok = await c.get(path, params={"role": "code"}, headers={"X-API-Key": INFERENCE_KEY})
    assert ok.status_code == 200, ok.text


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost")))
    assert not any(map(is_loopback, ("0.0.0.0", "192.168.1.2", "::", "example.com")))


def test_a_public_address_without_an_admin_key_is_refused(tmp_path: Path) -> None:
    settings = api_settings(tmp_path / "cfg", server={"host": "0.0.0.0", "port": 8100})
    with pytest.raises(ConfigError) as caught:
        check_bind(settings)
    assert "0.0.0.0" in caught.value.message and "api.admin_keys" in caught.value.message
    services = build_services(settings)
    try:
        with pytest.raises(ConfigError):
            create_app(services)
    finally:
        services.close()
    keyed = api_settings(
        tmp_path / "cfg2",
        server={"host": "0.0.0.0", "port": 8100},
        api={"admin_keys": [{"name": "a", "key": ADMIN_KEY}]},
        gateway={"api_keys": [{"name": "i", "key": INFERENCE_KEY}]},
    )
    check_bind(keyed)
    check_bind(api_settings(tmp_path / "cfg3"), "127.0.0.1")
