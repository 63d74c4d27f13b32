"""Issue 10, item 12: the OpenAPI document describes the API it documents.

Two parts, both against the real app served by uvicorn on 127.0.0.1 over real services
(SQLite under a temporary folder, a catalog of curated models served by the fake backend
through the ``command`` engine):

- schemathesis over every operation of ``/openapi.json``, positive and negative inputs, with
  no keys configured, with an admin key, and without a key or with an inference key on a
  server that has keys: no 5xx, every status and body documented (status, content type,
  schema, headers), schema-valid input taken and schema-invalid input refused. The one
  refusal of schema-valid input allowed is a 400 coded ``invalid_reference``: a profile that
  names a model the catalog does not have is well-formed, and no schema can say which models
  exist. Few examples per operation, derandomized, so the run is short and the same every time.
- regression tests for what the document got wrong: ``{}`` matched the import and profile
  bodies, ``0`` was taken for ``false``, role names outside the accepted pattern matched,
  and the statuses the API returns (400/404/409/503/507) were not documented.

Left out of schemathesis with an admin key: ``GET /api/events`` (a stream that never ends by
design; its 401/403 are checked), rescan bodies naming ``paths`` (a generated ``/`` would
scan the whole disk and be remembered) and ``follow=true`` logs (a stream until the client
leaves).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelyard.app import create_app
from modelyard.services import build_services
from modelyard.settings import Settings
from tests.api.conftest import (
    ADMIN_KEY,
    INFERENCE_KEY,
    catalog_entries,
    expect,
    served_in_thread,
)
from tests.gateway.harness import Running, fake_model, gateway_settings, running
from tests.support.processes import free_port

GIB = 1024**3
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}", "X-API-Key": ""}
INFERENCE = {"Authorization": f"Bearer {INFERENCE_KEY}", "X-API-Key": ""}
NO_KEY = {"Authorization": "", "X-API-Key": ""}


def local_settings(folder: Path, **sections: Any) -> Settings:
    """The API tests' catalog plus ``dies`` (its server exits at once: a start is a 503)."""
    return gateway_settings(
        folder,
        curated=[*catalog_entries(), fake_model("dies", "--die-after 0")],
        memory={"ram_bytes": 16 * GIB, "gpus": [], "reserve_bytes": 0},
        **sections,
    )


def _document() -> dict[str, Any]:
    """The app's OpenAPI document, built at collection (parametrize needs the operations
    then) over throwaway services; ``test_the_served_document_is_the_one_tested`` checks the
    served ``/openapi.json`` is this one."""
    with tempfile.TemporaryDirectory() as folder:
        services = build_services(local_settings(Path(folder) / "cfg"))
        try:
            document: dict[str, Any] = create_app(services).openapi()
        finally:
            services.close()
    return document


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/api/events")
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# For the refusals: well-formed requests only (a negative case may change the method, which
# is a 405 before any key is looked at).
every_operation = schemathesis.openapi.from_dict(DOCUMENT)
every_operation.config.generation.update(modes=[GenerationMode.POSITIVE])


@schema.hook
def filter_body(context: Any, body: Any) -> bool:
    operation = context.operation
    if operation is not None and operation.path == "/api/models/rescan":
        return not (isinstance(body, dict) and body.get("paths"))
    return True


@schema.hook
def filter_query(context: Any, query: Any) -> bool:
    operation = context.operation
    if operation is not None and operation.path.endswith("/logs"):
        return not (isinstance(query, dict) and query.get("follow") in (True, "true"))
    return True


def positive_data_taken(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, but for a 400 coded ``invalid_reference``:
    well-formed input naming what is not there (the one thing a schema cannot say)."""
    if response.status_code == 400 and _code(response) == "invalid_reference":
        return None
    return positive_data_acceptance(ctx, response, case)


def _code(response: Any) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
CHECKS = [*RESPONSE_CHECKS, positive_data_taken, negative_data_rejection]
EXAMPLES = settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with no keys configured (every caller is ``local``), for this module."""
    folder = tmp_path_factory.mktemp("openapi-local") / "cfg"
    with served_in_thread(
        local_settings(folder, server={"host": "127.0.0.1", "port": free_port()})
    ) as url:
        yield url


@pytest.fixture(scope="module")
def with_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with an admin key (``alice``) and an inference key (``app``) configured."""
    folder = tmp_path_factory.mktemp("openapi-keyed") / "cfg"
    keys = local_settings(
        folder,
        server={"host": "127.0.0.1", "port": free_port()},
        api={"admin_keys": [{"name": "alice", "key": ADMIN_KEY}]},
        gateway={"api_keys": [{"name": "app", "key": INFERENCE_KEY}]},
    )
    with served_in_thread(keys) as url:
        yield url


@pytest.mark.slow
@schema.parametrize()
@EXAMPLES
def test_without_keys_every_answer_is_documented(case: Any, local: str) -> None:
    """Prevents a status or body the document does not list, a 5xx, schema-valid input
    refused or schema-invalid input taken, for a local caller."""
    case.call_and_validate(base_url=local, checks=CHECKS, timeout=30)


@pytest.mark.slow
@schema.parametrize()
@EXAMPLES
def test_with_an_admin_key_every_answer_is_documented(case: Any, with_keys: str) -> None:
    """The same with keys configured and the admin key sent."""
    case.call_and_validate(base_url=with_keys, headers=ADMIN, checks=CHECKS, timeout=30)


@every_operation.parametrize()
@settings(
    max_examples=2,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_without_a_key_or_with_an_inference_key_the_refusal_is_documented(
    case: Any, with_keys: str
) -> None:
    """Prevents an undocumented 401/403 (or a body other than the error body) when keys are
    configured: no key is 401 everywhere; an inference key is 403 on /api, let in on /v1."""
    refused = case.call_and_validate(
        base_url=with_keys, headers=NO_KEY, checks=RESPONSE_CHECKS, timeout=30
    )
    assert refused.status_code == 401, refused.text
    inference = case.call_and_validate(
        base_url=with_keys, headers=INFERENCE, checks=RESPONSE_CHECKS, timeout=30
    )
    if case.operation.path.startswith("/api/"):
        assert inference.status_code == 403, inference.text
    else:
        assert inference.status_code != 403, inference.text


# -- the document ---------------------------------------------------------------------------


def _validator(schema_: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema from the document, its ``#/components`` refs resolved."""
    return Draft202012Validator({**schema_, "components": DOCUMENT["components"]})


def request_schema(method: str, path: str) -> dict[str, Any]:
    operation = DOCUMENT["paths"][path][method]
    found: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return found


def conforms(method: str, path: str, response: httpx.Response) -> None:
    """The response's status is documented for the operation and its body matches."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method.upper()} {path}: {status} is not documented"
    content = responses[status].get("content", {})
    if not content:
        return
    body_schema = content["application/json"]["schema"]
    errors = [e.message for e in _validator(body_schema).iter_errors(response.json())]
    assert not errors, f"{method.upper()} {path} {status}: {errors}"


def _can_be_wrong(parameter: dict[str, Any]) -> bool:
    """A query parameter, or a path parameter that is more than any string."""
    if parameter["in"] == "query":
        return True
    described = set(parameter["schema"]) - {"type", "title", "description"}
    return parameter["in"] == "path" and (
        bool(described) or parameter["schema"].get("type") != "string"
    )


def test_the_served_document_is_the_one_tested(local: str) -> None:
    """Prevents testing a document other than the one clients read: ``/openapi.json`` is the
    document above, with no 422 (validation errors are the documented 400) and the /v1 fast
    path left out."""
    served = httpx.get(local + "/openapi.json", timeout=30).json()
    assert served == DOCUMENT
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            checked = [p for p in operation.get("parameters", []) if _can_be_wrong(p)]
            if checked or "requestBody" in operation:  # a wrong one is the documented 400
                assert "400" in responses, (method, path)
            assert "401" in responses, (method, path)
            if path.startswith("/api/"):
                assert "403" in responses, (method, path)
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]
    for fast_path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/health"):
        assert fast_path not in DOCUMENT["paths"]


def test_every_route_is_documented() -> None:
    """Prevents a route left out of the document (include_in_schema, a missing router)."""
    for path in (
        "/api/models/registry",
        "/api/models/tiers/{tier}",
        "/api/models/rescan",
        "/api/models/{model_id}/tier",
        "/api/models/{model_id}/overrides/{field}",
        "/api/models/servers",
        "/api/models/profiles/{name}/activate",
        "/api/instances/presets",
        "/api/models/recommend",
        "/api/models/check_compatibility",
        "/v1/models/select_by_role",
        "/api/models/statistics",
        "/api/models/statistics/history",
        "/api/models/export",
        "/api/models/import",
        "/api/events",
        "/api/audit",
        "/api/instances/{instance_id}/logs",
    ):
        assert path in DOCUMENT["paths"], path


# -- what the document got wrong ------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    """A fresh app on a real port with no keys, and a client to it."""
    async with (
        running(local_settings(tmp_path / "cfg")) as app,
        httpx.AsyncClient(base_url=app.url, timeout=30) as client,
    ):
        yield app, client


async def test_an_empty_import_or_profile_is_refused_by_the_document_too(
    served: tuple[Running, httpx.AsyncClient],
) -> None:
    """Regression: ``{}`` matched the documented import and profile-create bodies (both were
    any object) and the server answered 400: a client built from the document could not know
    ``format``/``version`` and ``name`` are required."""
    _, client = served
    for path, missing, minimal in (
        ("/api/models/import", "format", {"format": "modelyard.catalog", "version": 1}),
        ("/api/models/profiles", "name", {"name": "bare"}),
    ):
        validator = _validator(request_schema("post", path))
        assert not validator.is_valid({}), path
        refused = await client.post(path, json={})
        conforms("post", path, refused)
        error = expect(refused, 400)["error"]
        assert (error["code"], error["param"]) == ("invalid_value", missing), error
        assert validator.is_valid(minimal), path
        taken = await client.post(path, json=minimal)
        conforms("post", path, taken)
        assert taken.status_code in (200, 201), taken.text


async def test_zero_and_one_are_not_booleans(served: tuple[Running, httpx.AsyncClient]) -> None:
    """Regression: ``{"enabled": 0}`` matched ``boolean`` loosely in the code and was taken as
    ``false`` (the model was disabled), while the document says a boolean."""
    app, client = served
    path = "/api/models/{model_id}/enabled"
    assert not _validator(request_schema("put", path)).is_valid({"enabled": 0})
    refused = await client.put("/api/models/alpha/enabled", json={"enabled": 0})
    conforms("put", path, refused)
    assert expect(refused, 400)["error"]["param"] == "enabled"
    assert app.services.catalog.get("alpha").enabled
    thinking = await client.put("/api/models/alpha/thinking", json={"thinking": 1})
    assert expect(thinking, 400)["error"]["param"] == "thinking"
    setting = await client.post(
        "/api/instances", json={"model": "beta", "config": {"web_search": 1}}
    )
    conforms("post", "/api/instances", setting)
    assert expect(setting, 400)["error"]["param"] == "config.web_search"
    assert app.services.fleet.instances() == []
    taken = await client.put("/api/models/alpha/enabled", json={"enabled": False})
    conforms("put", path, taken)
    assert expect(taken, 200)["enabled"] is False


async def test_role_names_outside_the_pattern_do_not_match_the_document(
    served: tuple[Running, httpx.AsyncClient],
) -> None:
    """Regression: the roles body was any ``{string: integer}``, so ``{"Code!": 5}`` matched
    the document and the server refused it; and ``select_by_role?role=Code!`` took any
    string and answered 404 for a name no model can have."""
    _, client = served
    path = "/api/models/{model_id}/roles"
    validator = _validator(request_schema("put", path))
    assert not validator.is_valid({"roles": {"Code!": 5}})
    assert not validator.is_valid({"roles": {"code": 101}})
    assert validator.is_valid({"roles": {"code": 5, "caption.v2": 0}})
    refused = await client.put("/api/models/alpha/roles", json={"roles": {"Code!": 5}})
    conforms("put", path, refused)
    assert expect(refused, 400)["error"]["param"] == "roles.Code!"
    taken = await client.put("/api/models/alpha/roles", json={"roles": {"caption.v2": 5}})
    assert expect(taken, 200)["roles"]["caption.v2"] == 5
    role = await client.get("/v1/models/select_by_role", params={"role": "Code!"})
    conforms("get", "/v1/models/select_by_role", role)
    error = expect(role, 400)["error"]
    assert (error["param"], error["src"]) == ("role", "gateway")


async def test_each_status_the_api_returns_is_documented_with_its_body(
    served: tuple[Running, httpx.AsyncClient],
) -> None:
    """Regression: the document listed 200 (and a 422 never sent) while the API answers
    400, 404, 409, 503 and 507: each one, produced for real here (an unknown id, a stale
    If-Match, a backend that exits at start, a model bigger than the memory budget), must be
    documented for its operation with the error body."""
    _, client = served
    instance = "/api/instances/{instance_id}"
    created = await client.post("/api/instances", json={"model": "beta"})
    conforms("post", "/api/instances", created)
    etag = (await client.get("/api/instances/beta:01")).headers["etag"]
    cases: list[tuple[str, str, str, dict[str, Any], int]] = [
        ("put", instance, "/api/instances/beta:01", {"json": {"colour": 1}}, 400),
        ("get", instance, "/api/instances/nope:01", {}, 404),
        ("post", "/api/instances", "/api/instances", {"json": {"model": "nope"}}, 404),
        (
            "put",
            instance,
            "/api/instances/beta:01",
            {"json": {"pinned": True}, "headers": {"If-Match": '"stale"'}},
            409,
        ),
        (
            "put",
            instance,
            "/api/instances/beta:01",
            {"json": {}, "headers": {"If-Match": etag}},
            200,
        ),
        ("get", "/api/models/profiles/{name}", "/api/models/profiles/Not_A_Name", {}, 400),
        ("get", "/api/models/profiles/{name}", "/api/models/profiles/nope", {}, 404),
        ("delete", "/api/instances/presets/{name}", "/api/instances/presets/coder", {}, 409),
        (
            "post",
            "/api/models/check_compatibility",
            "/api/models/check_compatibility",
            {"json": {"model": "nope"}},
            404,
        ),
    ]
    for method, template, url, kwargs, status in cases:
        response = await client.request(method.upper(), url, **kwargs)
        assert response.status_code == status, (method, url, response.text)
        conforms(method, template, response)

    start = "/api/instances/{instance_id}/start"
    for model, status in (("dies", 503), ("gamma", 507)):
        made = expect(await client.post("/api/instances", json={"model": model}), 201)
        response = await client.post(f"/api/instances/{made[0]['id']}/start")
        assert response.status_code == status, (model, response.text)
        conforms("post", start, response)

    # A profile naming models the catalog does not have: well-formed, so a 400 coded apart.
    ghost = {"name": "ghost", "enabled_models": ["nobody"]}
    refused = await client.post("/api/models/profiles", json=ghost)
    conforms("post", "/api/models/profiles", refused)
    assert expect(refused, 400)["error"]["code"] == "invalid_reference"


async def test_unknown_paths_and_wrong_methods_get_the_error_body(
    served: tuple[Running, httpx.AsyncClient],
) -> None:
    """Regression: a wrong method or path under /api answered ``{"detail": ...}``, a shape
    the document does not describe; now it is the one error body."""
    _, client = served
    error_schema = {"$ref": "#/components/schemas/ApiError"}
    for method, url, status in (
        ("GET", "/api/models/import", 405),
        ("GET", "/api/nothing/here", 404),
    ):
        response = await client.request(method, url)
        assert response.status_code == status, response.text
        assert _validator(error_schema).is_valid(response.json()), response.text


async def test_numbers_are_read_as_the_document_counts_them(
    served: tuple[Running, httpx.AsyncClient],
) -> None:
    """Regression: ``NaN`` for ``memory_gb`` was a 500 and ``Infinity`` (or ``1e400``) was
    stored as an idle TTL, though the document's numbers are finite; and strict integers
    must still take ``2.0``, which JSON Schema counts as the integer 2."""
    app, client = served
    json_type = {"content-type": "application/json"}
    for path, body, param in (
        ("/api/models/recommend", '{"memory_gb": NaN}', "memory_gb"),
        ("/api/instances", '{"model": "beta", "config": {"idle_ttl": Infinity}}', None),
        ("/api/instances", '{"model": "beta", "config": {"idle_ttl": 1e400}}', None),
        (
            "/api/models/profiles",
            '{"name": "p", "instances": [{"model": "alpha", "idle_ttl": 1e400}]}',
            "instances[0].idle_ttl",
        ),
    ):
        response = await client.post(path, content=body, headers=json_type)
        conforms("post", path, response)
        assert expect(response, 400)["error"]["param"] == (param or "config.idle_ttl")
    assert app.services.fleet.instances() == []
    two = await client.post("/api/instances", json={"model": "beta", "count": 2.0})
    conforms("post", "/api/instances", two)
    assert [view["id"] for view in expect(two, 201)] == ["beta:01", "beta:02"]
