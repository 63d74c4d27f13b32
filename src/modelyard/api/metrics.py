"""``GET /metrics``: the figures in Prometheus' text format, behind ``api.metrics_keys``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from modelyard.api.auth import check_metrics, presented_key
from modelyard.figures.service import Figures
from modelyard.settings import Settings


def metrics_router(figures: Figures, settings: Settings) -> APIRouter:
    """A router serving ``GET /metrics`` from ``figures``; with ``api.metrics_keys`` set, a
    caller without one of them (or an admin key) gets 401.

    The route is ``async`` on purpose: it reads the aggregates on the event loop's thread,
    the only thread that changes them.
    """
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        check_metrics(settings, presented_key(authorization, x_api_key))
        body, content_type = figures.render_metrics()
        return Response(content=body, media_type=content_type)

    return router
