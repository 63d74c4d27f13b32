"""Errors on ``/v1``: always OpenAI's shape, with ``src`` saying who failed.

    {"error": {"message": ..., "type": ..., "param": ..., "code": ..., "src": "gateway"}}

``src`` is ``gateway`` (bad input, no such model, full queue), ``fleet`` (the instance could
not be made ready) or ``upstream`` (the backend failed or timed out). Nothing a client sends
becomes a 500: FastAPI's validation errors, unknown paths and wrong methods under ``/v1`` are
rendered here too (``http_error``, ``validation_error``; the app picks the renderer by path).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from modelyard.errors import FleetError, ModelyardError, UpstreamError

Source = Literal["gateway", "fleet", "upstream"]

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


def source_of(exc: ModelyardError) -> Source:
    if isinstance(exc, UpstreamError):
        return "upstream"
    if isinstance(exc, FleetError):
        return "fleet"
    return "gateway"


def error_body(exc: ModelyardError) -> dict[str, Any]:
    """``exc`` as OpenAI's error object, with ``src``."""
    body = exc.to_openai()
    body["error"]["src"] = source_of(exc)
    return body


def error_response(exc: ModelyardError, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON response for ``exc`` (its status; ``Retry-After`` when it carries one)."""
    out = dict(headers or {})
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        out["retry-after"] = str(retry_after)
    return Response(
        json.dumps(error_body(exc)).encode(), exc.status, out, media_type="application/json"
    )


def error_event(exc: ModelyardError) -> bytes:
    """The end of a stream that failed after it began: one error event, then ``[DONE]``."""
    return b"data: " + json.dumps(error_body(exc)).encode() + b"\n\ndata: [DONE]\n\n"


def plain_error(status: int, message: str, code: str, param: str | None = None) -> Response:
    """An OpenAI-shaped error for a status that has no ModelyardError of its own."""
    body = {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error"),
            "param": param,
            "code": code,
            "src": "gateway",
        }
    }
    return Response(json.dumps(body).encode(), status, media_type="application/json")


def http_error(exc: HTTPException) -> Response:
    """Starlette's own errors (no such path, a wrong method) in OpenAI's shape."""
    code = "not_found" if exc.status_code == 404 else "http_error"
    return plain_error(exc.status_code, str(exc.detail), code)


def validation_error(exc: RequestValidationError) -> Response:
    """FastAPI's validation errors as OpenAI's 400, naming the first bad field."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg', 'invalid')}" if param else "invalid request"
    return plain_error(400, message, "invalid_value", param)
