"""schemathesis against ``/openapi.json``: every operation, generated inputs, no 5xx, and
every documented response matches its schema.

The app runs under uvicorn in a thread of its own (its lifespan starts the fleet over fake
backends), so generated start/stop calls reach a real fleet. Ten examples per operation,
derandomized, so the run is the same every time.

Left out: ``GET /api/events``, a stream that never ends by design (``test_events`` covers
it). Rescan bodies are generated without ``paths``: a generated ``/`` would scan the whole
disk and be remembered for later scans.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from modelyard.app import create_app
from modelyard.services import build_services
from tests.api.conftest import api_settings, served_in_thread
from tests.support.processes import free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a free port, in a thread with its own event loop, for this module."""
    folder = tmp_path_factory.mktemp("openapi") / "cfg"
    settings = api_settings(folder, server={"host": "127.0.0.1", "port": free_port()})
    with served_in_thread(settings) as url:
        yield url


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document, read at collection (parametrize needs the operations then)
    from an app over throwaway services."""
    with tempfile.TemporaryDirectory() as folder:
        services = build_services(api_settings(Path(folder) / "cfg"))
        try:
            document: dict[str, Any] = create_app(services).openapi()
        finally:
            services.close()
    return document


schema = schemathesis.openapi.from_dict(_openapi()).exclude(path="/api/events")


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    operation = context.operation
    if operation is not None and operation.path == "/api/models/rescan":
        return None
    return body


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_errors_and_responses_match_the_schema(case: Any, served: str) -> None:
    case.call_and_validate(
        base_url=served,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=30,
    )


def test_every_route_is_documented() -> None:
    raw = schema.raw_schema["paths"]
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
        "/api/models/export",
        "/api/models/import",
        "/api/events",
        "/api/audit",
    ):
        assert path in raw, path
