"""Typed accessors from a request to the services the composition root put on ``app.state``.

Routes (``modelyard.api``, ``modelyard.dashboard``) never reach into ``app.state``
themselves, nor import the app: they depend on these.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from modelyard.api.auth import Caller, identify, identify_any, presented_key
from modelyard.catalog.catalog import Catalog
from modelyard.events import EventBus
from modelyard.figures.service import Figures
from modelyard.fleet.fleet import Fleet
from modelyard.profiles.presets import Presets
from modelyard.profiles.service import ProfileService
from modelyard.services import Services
from modelyard.store import Store


def services_of(request: Request) -> Services:
    """The services the app was built with (``create_app`` puts them on ``app.state``)."""
    found = request.app.state.services
    assert isinstance(found, Services)
    return found


def catalog(request: Request) -> Catalog:
    return services_of(request).catalog


def fleet(request: Request) -> Fleet:
    return services_of(request).fleet


def figures(request: Request) -> Figures:
    return services_of(request).figures


def profiles(request: Request) -> ProfileService:
    return services_of(request).profiles


def presets(request: Request) -> Presets:
    return services_of(request).presets


def events(request: Request) -> EventBus:
    return services_of(request).events


def store(request: Request) -> Store:
    return services_of(request).store


def admin(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """The admin caller of this request. Raises Unauthorized (401) or Forbidden (403)."""
    return identify(services_of(request).settings, presented_key(authorization, x_api_key))


AdminCaller = Annotated[Caller, Depends(admin)]
ServicesDep = Annotated[Services, Depends(services_of)]
CatalogDep = Annotated[Catalog, Depends(catalog)]
FleetDep = Annotated[Fleet, Depends(fleet)]
FiguresDep = Annotated[Figures, Depends(figures)]
ProfilesDep = Annotated[ProfileService, Depends(profiles)]
PresetsDep = Annotated[Presets, Depends(presets)]
EventsDep = Annotated[EventBus, Depends(events)]
StoreDep = Annotated[Store, Depends(store)]


def any_caller(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """An admin or inference caller (for the read-only /v1 additions). Raises Unauthorized."""
    return identify_any(services_of(request).settings, presented_key(authorization, x_api_key))


AnyCaller = Annotated[Caller, Depends(any_caller)]
