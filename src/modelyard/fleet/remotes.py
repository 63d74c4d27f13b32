"""Remote servers' model lists: GET ``/v1/models`` of each curated ``engine: remote`` entry,
through the shared transport, with the entry's key (read when sent). The composition root
hands the names to the catalog (``Catalog.set_remote_models``), which adds one curated model
per name. An entry whose URL is refused (external, ``remote.allow_external`` false) or whose
server does not answer is skipped with the reason; its own entry stays servable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.errors import ModelyardError, UpstreamError
from modelyard.fleet.process import listed_names
from modelyard.settings import CuratedModel
from modelyard.upstream import Transport, bearer

ModelsUrl = Callable[[CuratedModel], str]
"""``entry -> its server's /v1/models URL`` (the remote engine's ``models_url``); raises
EngineError or ExternalUrlRefused for a URL that may not be used."""


@dataclass(frozen=True)
class Listing:
    """One remote entry's answer: the model names, or why there are none."""

    entry_id: str
    names: tuple[str, ...] = ()
    error: str | None = None


async def list_remote(
    transport: Transport, entry: CuratedModel, models_url: ModelsUrl, timeout_s: float
) -> Listing:
    """The names ``entry``'s server lists. Never raises for the server's or URL's fault."""
    try:
        url = models_url(entry)
        status, body = await transport.call("GET", url, b"", timeout_s, bearer(entry.api_key_env))
        if status != 200:
            raise UpstreamError(f"GET /v1/models answered {status}")
    except ModelyardError as exc:
        return Listing(entry.id, error=exc.message)
    return Listing(entry.id, tuple(sorted(listed_names(body))))


async def list_remotes(
    transport: Transport,
    entries: list[CuratedModel],
    models_url: ModelsUrl,
    timeout_s: float,
) -> list[Listing]:
    """Every remote entry's listing, concurrently."""
    remote = [e for e in entries if e.engine == "remote"]
    listings = (list_remote(transport, e, models_url, timeout_s) for e in remote)
    return list(await asyncio.gather(*listings))
