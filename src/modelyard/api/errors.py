"""Errors on ``/api`` (and the dashboard): the documented JSON error body, one renderer.

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

with the error's own status and ``Retry-After`` when it carries one. ``/v1`` has its own
renderer (``gateway.errors``: OpenAI's shape with ``src``); the app picks by path.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from modelyard.errors import ModelyardError


def error_response(exc: ModelyardError) -> JSONResponse:
    headers = {}
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return JSONResponse(exc.to_openai(), status_code=exc.status, headers=headers)
