"""Profile routes.

    GET    /api/models/profiles                      every profile, valid or not, and the active one
    POST   /api/models/profiles                      create
    GET    /api/models/profiles/{name}               one profile, its version (ETag) and problems
    PUT    /api/models/profiles/{name}               replace (If-Match: the version read)
    DELETE /api/models/profiles/{name}               remove (not the active one)
    POST   /api/models/profiles/{name}/activate      switch to it now (``?dry_run=true``: plan only)

A write with ``If-Match`` lands only if the file is still at that version, else 409; without
it, writes are serialised and each lands.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, Field

from modelyard.api.bodies import JsonRoute
from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, ProfilesDep
from modelyard.profiles.schema import NAME_PATTERN, Profile, ProfileContent
from modelyard.profiles.service import ProfileEntry

router = APIRouter(
    prefix="/api/models/profiles", tags=["profiles"], responses=AUTH, route_class=JsonRoute
)

Name = Annotated[str, Path(pattern=NAME_PATTERN, description="the profile's file name")]


class ProfileReplacement(ProfileContent):
    """A profile's new content; ``name``, when given, must be the one in the path."""

    name: str | None = Field(None, pattern=NAME_PATTERN)


class ProfileSummary(BaseModel):
    name: str
    description: str | None = None
    active: bool
    valid: bool
    problems: list[str]
    version: str


class ProfileList(BaseModel):
    active: str | None
    profiles: list[ProfileSummary]


class ProfileOut(BaseModel):
    name: str
    active: bool
    version: str
    valid: bool
    problems: list[str]
    profile: Profile | None
    raw: Any = None


class CreatedInstance(BaseModel):
    model_id: str
    start: bool
    display_name: str | None = None
    system_prompt: str | None = None
    web_search: bool
    on_demand: bool
    idle_ttl: float | None = None


class Failure(BaseModel):
    target: str
    error: str


class ActivationOut(BaseModel):
    """What a switch changed (or would change, with ``dry_run``)."""

    profile: str
    enable: list[str]
    disable: list[str]
    create: list[CreatedInstance]
    start: list[str]
    stop: list[str]
    unchanged: list[str]
    created: list[str]
    failed: list[Failure]
    dry_run: bool


def _summary(entry: ProfileEntry, active: str | None) -> ProfileSummary:
    description = entry.profile.description if entry.profile else None
    if description is None and isinstance(entry.data, dict):
        raw = entry.data.get("description")
        description = raw if isinstance(raw, str) else None
    return ProfileSummary(
        name=entry.name,
        description=description,
        active=entry.name == active,
        valid=entry.profile is not None,
        problems=list(entry.problems),
        version=entry.version,
    )


def _out(entry: ProfileEntry, active: str | None) -> ProfileOut:
    return ProfileOut(
        name=entry.name,
        active=entry.name == active,
        version=entry.version,
        valid=entry.profile is not None,
        problems=list(entry.problems),
        profile=entry.profile,
        raw=None if entry.profile is not None else entry.data,
    )


def _etag(response: Response, version: str) -> None:
    response.headers["ETag"] = f'"{version}"'


def _version(if_match: str | None) -> str | None:
    if if_match is None or if_match.strip() == "*":
        return None
    return if_match.strip().removeprefix("W/").strip('"')


@router.get("", response_model=ProfileList)
async def list_profiles(profiles: ProfilesDep, _: AdminCaller) -> ProfileList:
    """Every profile in the folder (copying the examples there on first use)."""

    def read() -> ProfileList:
        active = profiles.active_name()
        entries = [profiles.read(n) for n in profiles.names()]
        return ProfileList(active=active, profiles=[_summary(e, active) for e in entries])

    return await asyncio.to_thread(read)


def _content(body: BaseModel) -> dict[str, Any]:
    """What was sent, as the service reads a file (it checks the references again)."""
    return body.model_dump(mode="json", exclude_unset=True)


@router.post("", response_model=ProfileOut, status_code=201, responses=responses(400, 409))
async def create_profile(
    profiles: ProfilesDep, caller: AdminCaller, response: Response, body: Profile
) -> ProfileOut:
    """Create a profile. 400 lists every bad field, or (``invalid_reference``) every unknown
    model id and preset; 409 if it exists."""
    profile, version = await asyncio.to_thread(profiles.create, _content(body), actor=caller.name)
    _etag(response, version)
    entry = ProfileEntry(profile.name, version, None, profile)
    return _out(entry, await asyncio.to_thread(profiles.active_name))


@router.get("/{name}", response_model=ProfileOut, responses=responses(400, 404))
async def get_profile(
    name: Name, profiles: ProfilesDep, _: AdminCaller, response: Response
) -> ProfileOut:
    """One profile; an invalid file is returned with its problems and raw content."""

    def read() -> tuple[ProfileEntry, str | None]:
        return profiles.read(name), profiles.active_name()

    entry, active = await asyncio.to_thread(read)
    _etag(response, entry.version)
    return _out(entry, active)


@router.put("/{name}", response_model=ProfileOut, responses=responses(400, 404, 409))
async def update_profile(
    name: Name,
    profiles: ProfilesDep,
    caller: AdminCaller,
    response: Response,
    body: ProfileReplacement,
    if_match: Annotated[str | None, Header()] = None,
) -> ProfileOut:
    """Replace a profile. ``If-Match``: the version read (409 if it changed since)."""
    content = _content(body)
    if content.get("name") is None:  # null: the path's name
        content.pop("name", None)
    profile, version = await asyncio.to_thread(
        lambda: profiles.update(
            name, content, actor=caller.name, expected_version=_version(if_match)
        )
    )
    _etag(response, version)
    entry = ProfileEntry(name, version, None, profile)
    return _out(entry, await asyncio.to_thread(profiles.active_name))


@router.delete("/{name}", status_code=204, responses=responses(400, 404, 409))
async def delete_profile(
    name: Name,
    profiles: ProfilesDep,
    caller: AdminCaller,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Remove a profile. 409 for the active one."""
    await asyncio.to_thread(
        lambda: profiles.delete(name, actor=caller.name, expected_version=_version(if_match))
    )
    return Response(status_code=204)


@router.post("/{name}/activate", response_model=ActivationOut, responses=responses(400, 404, 409))
async def activate_profile(
    name: Name, profiles: ProfilesDep, caller: AdminCaller, dry_run: bool = False
) -> ActivationOut:
    """Switch to the profile now: enable and disable models, create, start and stop
    instances. Blocks until every start has finished; failures are listed, not raised. 409
    when the file is not valid now (its problems are listed)."""
    result = await profiles.activate(name, actor=caller.name, dry_run=dry_run)
    return ActivationOut.model_validate(result.to_dict())
