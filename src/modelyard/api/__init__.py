"""The /api management routes: thin layers over the services.

``include_management(app)`` adds every family in the order that keeps literal paths ahead of
parameterised ones (``/api/instances/presets`` before ``/api/instances/{id}``,
``/api/models/profiles/...`` before ``/api/models/{id}/...``, ``/v1/models/select_by_role``
before any ``/v1/models/{id}``). Call it before including the instance and gateway routers.
"""

from __future__ import annotations

from fastapi import FastAPI


def include_management(app: FastAPI) -> None:
    from modelyard.api import audit, backup, catalog, events, figures, presets, profiles
    from modelyard.api.advice import router as advice

    for module_router in (
        presets.router,
        profiles.router,
        figures.router,
        backup.router,
        advice.router,
        catalog.router,
        audit.router,
        events.router,
    ):
        app.include_router(module_router)
