"""Errors on ``/api`` (and the dashboard): the documented JSON error body, one renderer.

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

with the error's own status and ``Retry-After`` when it carries one. ``/v1`` has its own
renderer (``gateway.errors``: OpenAI's shape with ``src``); the app picks by path.

A request that does not match the OpenAPI document (FastAPI's validation) is a 400 in the same
body, code ``invalid_value``, ``param`` the first bad field and ``problems`` every one of them
(``validation_failed``); an unknown path or a wrong method is a 404/405 in it too
(``http_error``). ``ApiError`` is the body as a model and ``responses`` documents it for the
statuses a route returns, so the document says what the API does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from modelyard.errors import ModelyardError, ValidationFailed

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


class ErrorDetail(BaseModel):
    """What went wrong. More keys may follow: ``problems`` (every bad field or reference,
    one line each), ``retry_after`` (seconds), on ``/v1`` ``src`` (who failed)."""

    model_config = ConfigDict(extra="allow")

    message: str = Field(description="one line for a person, naming what is wrong")
    type: str = Field(description="OpenAI's error type: invalid_request_error, ...")
    param: str | None = Field(description="the field, parameter or header at fault, if one is")
    code: str = Field(description="stable for programs: invalid_value, model_not_found, ...")


class ApiError(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


_WHY: dict[int, str] = {
    400: "The request does not match this document (code `invalid_value`, `param` the first "
    "bad field, `problems` all of them), or names something that does not exist or does not "
    "fit (code `invalid_reference`)",
    401: "No admin key, or an unknown one, while keys are configured",
    403: "An inference key, where an admin key is needed",
    404: "No such model, instance, profile, preset or role",
    409: "A conflict with the current state: a stale If-Match, a name taken, the active profile",
    429: "The queue is full; retry after `Retry-After` seconds",
    503: "The fleet cannot do it now: the instance did not start or stop, no free port, no "
    "engine program",
    507: "Not enough memory to start the instance, even after stopping idle ones",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI's ``responses=`` for error ``statuses``: each one documented with ``ApiError``."""
    return {
        status: {"model": ApiError, "description": _WHY.get(status, HTTPStatus(status).phrase)}
        for status in statuses
    }


AUTH = responses(401, 403)  # every /api route: the caller is checked first


def error_response(exc: ModelyardError) -> JSONResponse:
    headers = {}
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return JSONResponse(exc.to_openai(), status_code=exc.status, headers=headers)


def _where(loc: Iterable[Any]) -> str:
    """``("body", "instances", 0, "count")`` as ``instances[0].count``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("body", "query", "path", "header", "[key]"):  # [key]: a bad key
            text += f".{part}" if text else str(part)
    return text


def validation_failed(errors: Sequence[Any]) -> ValidationFailed:
    """FastAPI's validation errors as the one 400: every problem listed, the first named."""
    named = [(_named(error), str(error.get("msg", "invalid"))) for error in errors]
    problems = [f"{where}: {message}" if where else message for where, message in named]
    if not problems:
        return ValidationFailed("invalid request", problems=[])
    count = len(problems)
    if count == 1:  # one line as it is: "memory_gb: Input should be greater than 0"
        return ValidationFailed(problems[0], param=named[0][0] or None, problems=problems)
    head = f"{count} problems"
    return ValidationFailed(
        f"{head}: " + "; ".join(problems), param=named[0][0] or None, problems=problems
    )


def _named(error: Any) -> str:
    # A body that is not JSON has the offset where parsing stopped as its location.
    if error.get("type") == "json_invalid":
        return "body"
    return _where(error.get("loc", ()))


def validation_response(exc: RequestValidationError) -> JSONResponse:
    return error_response(validation_failed(exc.errors()))


def http_error(exc: HTTPException) -> JSONResponse:
    """Starlette's own errors (no such path, a wrong method) in the documented body."""
    status = exc.status_code
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": str(exc.detail), "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=dict(exc.headers or {}))


def without_fastapi_422(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (an OpenAPI dict, changed in place) without the 422 FastAPI adds to every
    operation with parameters: its validation errors are the 400 above, so a 422 is never
    sent and ``HTTPValidationError`` never seen."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document
