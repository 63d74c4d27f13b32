"""The ``/v1`` routes and ``GET /health``: thin, each hands the request to the Gateway.

The POST routes are plain Starlette routes (no FastAPI body model or dependency
resolution): the gateway parses the body once itself, on the hot path.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelyard.errors import ModelyardError
from modelyard.gateway.errors import error_response
from modelyard.gateway.serving import Gateway


def gateway_router(gateway: Gateway) -> APIRouter:
    """The routes over ``gateway``."""
    router = APIRouter()

    async def chat(request: Request) -> Response:
        return await gateway.handle(request, "chat")

    async def completions(request: Request) -> Response:
        return await gateway.handle(request, "completions")

    async def embeddings(request: Request) -> Response:
        return await gateway.handle(request, "embeddings")

    async def models(request: Request) -> Response:
        try:
            gateway.check_key(request.headers.get("authorization"))
        except ModelyardError as exc:
            return error_response(exc)
        return JSONResponse(gateway.listing())

    async def health(request: Request) -> Response:
        return JSONResponse(gateway.health())

    router.add_route("/v1/chat/completions", chat, methods=["POST"], include_in_schema=False)
    router.add_route("/v1/completions", completions, methods=["POST"], include_in_schema=False)
    router.add_route("/v1/embeddings", embeddings, methods=["POST"], include_in_schema=False)
    router.add_route("/v1/models", models, methods=["GET"], include_in_schema=False)
    router.add_route("/health", health, methods=["GET"], include_in_schema=False)
    return router
