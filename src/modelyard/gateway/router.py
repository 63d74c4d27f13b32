"""The ``/v1`` routes and ``GET /health``: thin, each hands the request to the Gateway.

``GET /health`` answers everyone up or down; the instances' states, load and errors only
callers with an inference or admin key (everyone when no key is configured).

The POSTs are normally served by ``asgi.FastPath`` before the router is reached; their routes
here are the same ASGI endpoints, so a wrong method still gets the router's 405. A browser's
CORS preflight (``OPTIONS /v1/...``) is answered by ``preflight`` (``gateway.cors``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelyard.gateway.asgi import GatewayEndpoint
from modelyard.gateway.cors import Cors
from modelyard.gateway.protocol import PATHS
from modelyard.gateway.serving import Gateway


def gateway_router(gateway: Gateway, cors: Cors | None = None) -> APIRouter:
    """The routes over ``gateway``; browsers' preflights answered from ``cors``."""
    router = APIRouter()
    answering = cors or Cors(())

    def preflight(allow: str) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            origin = request.headers.get("origin")
            if origin is None or "access-control-request-method" not in request.headers:
                # A plain OPTIONS, not a browser's preflight: the 405 other methods get.
                raise HTTPException(405, "Method Not Allowed", headers={"allow": allow})
            asked = request.headers.get("access-control-request-headers")
            return Response(status_code=204, headers=_text(answering.preflight(origin, asked)))

        return answer

    async def models(request: Request) -> Response:
        gateway.check_key(request.headers.get("authorization"))  # rendered by the app's handler
        return JSONResponse(gateway.listing())

    async def health(request: Request) -> Response:
        # instance names, load and errors are for key holders; anyone may ask up or down
        if gateway.shows_details(request.headers.get("authorization")):
            return JSONResponse(gateway.health())
        return JSONResponse(gateway.status())

    for endpoint, path in PATHS.items():
        app = GatewayEndpoint(gateway, endpoint)
        router.add_route(path, app, methods=["POST"], include_in_schema=False)  # type: ignore[arg-type]
        router.add_route(path, preflight("POST"), methods=["OPTIONS"], include_in_schema=False)
    router.add_route("/v1/models", models, methods=["GET"], include_in_schema=False)
    router.add_route("/v1/models", preflight("GET"), methods=["OPTIONS"], include_in_schema=False)
    router.add_route("/health", health, methods=["GET"], include_in_schema=False)
    return router


def _text(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
