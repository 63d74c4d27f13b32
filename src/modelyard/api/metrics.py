"""``GET /metrics``: the figures in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from modelyard.figures.service import Figures


def metrics_router(figures: Figures) -> APIRouter:
    """A router serving ``GET /metrics`` from ``figures``.

    The route is ``async`` on purpose: it reads the aggregates on the event loop's thread,
    the only thread that changes them.
    """
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = figures.render_metrics()
        return Response(content=body, media_type=content_type)

    return router
