"""The FastAPI app of ``modelyard serve``: routers over the services, one lifespan.

``create_app(services)`` builds it; routers are included here and reach the services through
``services_of(request)``. The lifespan starts the fleet (leftover cleanup, restores) and stops
every instance when the server shuts down (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from modelyard import __version__
from modelyard.api import errors as api_errors
from modelyard.errors import ModelyardError
from modelyard.gateway import errors as gateway_errors
from modelyard.services import Services


async def _modelyard_error(request: Request, exc: Exception) -> Response:
    """Each surface has one renderer: ``/v1`` OpenAI's shape, the rest ``/api``'s JSON."""
    assert isinstance(exc, ModelyardError)
    if request.url.path.startswith("/v1/"):
        return gateway_errors.error_response(exc)
    return api_errors.error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """A request that does not match the OpenAPI document: a 400 in the surface's error body
    (FastAPI's own ``{"detail": [...]}`` 422 only outside ``/v1`` and ``/api``)."""
    assert isinstance(exc, RequestValidationError)
    path = request.url.path
    if path.startswith("/v1"):
        return gateway_errors.validation_error(exc)
    if path.startswith("/api"):
        return api_errors.validation_response(exc)
    return await request_validation_exception_handler(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """No such path, a wrong method: in the surface's error body (starlette's elsewhere)."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if path.startswith("/v1"):
        return gateway_errors.http_error(exc)
    if path.startswith("/api"):
        return api_errors.http_error(exc)
    return await http_exception_handler(request, exc)


def create_app(services: Services) -> FastAPI:
    """The app over ``services``. Other routers are added with ``app.include_router``."""
    from modelyard.api import include_management
    from modelyard.api.auth import check_bind
    from modelyard.api.instances import router as instances_router
    from modelyard.api.metrics import metrics_router
    from modelyard.dashboard import router as dashboard_router
    from modelyard.gateway.asgi import FastPathApp
    from modelyard.gateway.cors import Cors
    from modelyard.gateway.router import gateway_router

    check_bind(services.settings)  # no admin key: loopback only

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.aclose()

    # The /v1 POSTs skip FastAPI's layers and route matching: the hot path (gateway.asgi).
    cors = Cors(services.settings.gateway.cors_origins)
    app = FastPathApp(
        gateway=services.gateway,
        cors=cors,
        title="modelyard",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_exception_handler(ModelyardError, _modelyard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    include_management(app)  # first: its literal paths go before parameterised ones
    # The gateway early: routes are matched in order, and /v1 is the hot path.
    app.include_router(gateway_router(services.gateway, cors))
    app.include_router(instances_router)
    app.include_router(metrics_router(services.figures, services.settings))
    app.include_router(dashboard_router)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """``/openapi.json`` without FastAPI's 422: validation errors are rendered as a 400."""
    build = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api_errors.without_fastapi_422(build())
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]  # FastAPI's documented way
