"""The composition root: builds every service once. The app, the CLI and the tests use it.

``build_services`` wires them; ``Services.start`` and ``Services.aclose`` run them, in one
order: figures first (the fleet's last requests are recorded before they stop), then the
fleet (leftover cleanup, restores), the gateway, the active profile; stopped in reverse, the
shared backend pool last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.catalog.catalog import Catalog
from modelyard.catalog.snapshot import CatalogSnapshot
from modelyard.engines.command import CommandEngine
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.ollama import OllamaEngine
from modelyard.engines.registry import EngineRegistry, curated_commands
from modelyard.engines.remote import RemoteEngine, models_url
from modelyard.engines.vllm import VllmEngine
from modelyard.events import EventBus
from modelyard.figures.service import Figures
from modelyard.fleet.budget import MemoryBudget
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.leases import Leases
from modelyard.fleet.memory import MemoryLedger, read_inventory
from modelyard.fleet.remotes import list_remotes
from modelyard.gateway.serving import Gateway
from modelyard.profiles.presets import Presets
from modelyard.profiles.service import ProfileService
from modelyard.settings import Settings
from modelyard.store import Store
from modelyard.upstream import UpstreamPool

logger = logging.getLogger(__name__)
_REMOTE_LIST_S = 10.0


@dataclass
class Services:
    """Every long-lived service, wired together. Close with ``close()``."""

    settings: Settings
    store: Store
    catalog: Catalog
    figures: Figures  # async: start() with the server, aclose() before close()
    engines: EngineRegistry
    fleet: Fleet  # async: start() with the server, aclose() before close()
    events: EventBus
    presets: Presets
    profiles: ProfileService
    gateway: Gateway  # async: start() after the fleet, aclose() before it
    upstream: UpstreamPool  # the one pool to backends: the gateway's and the health checks'
    _unlisten: Callable[[], None] | None = None
    _remotes: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run everything, in order; on a failure what was started is stopped again."""
        await asyncio.to_thread(self.catalog.load)  # the first snapshot, off the loop
        loop = asyncio.get_running_loop()

        def changed(snapshot: CatalogSnapshot) -> None:  # in the changing thread: hop over
            loop.call_soon_threadsafe(self._catalog_changed, snapshot)

        self._unlisten = self.catalog.add_listener(changed)
        await self.figures.start()
        try:
            await self.fleet.start()
            try:
                await self.gateway.start()
                if await self.profiles.activate_at_start() is None:
                    routing = await asyncio.to_thread(self.profiles.active_routing)
                    self.gateway.apply_profile(routing)
                if any(c.engine == "remote" for c in self.settings.curated):
                    self._remotes = asyncio.ensure_future(self.list_remote_models())
            except BaseException:
                await self.gateway.aclose()
                await self.fleet.aclose()
                raise
        except BaseException:
            await self.figures.aclose()
            await self.upstream.aclose()
            raise

    async def list_remote_models(self) -> None:
        """Merge each remote entry's ``/v1/models`` into the catalog (``fleet.remotes``); an
        entry that cannot be listed is logged with the reason and left as it is."""
        remote = self.settings.remote
        listings = await list_remotes(
            self.upstream,
            list(self.settings.curated),
            lambda entry: models_url(entry, remote),
            _REMOTE_LIST_S,
        )
        for listing in listings:
            if listing.error is not None:
                logger.warning("remote %s not listed: %s", listing.entry_id, listing.error)
                continue
            await asyncio.to_thread(self.catalog.set_remote_models, listing.entry_id, listing.names)

    def _catalog_changed(self, snapshot: CatalogSnapshot) -> None:
        """On the loop: the catalog swapped its snapshot (a rescan, an override, a reload)."""
        self.gateway.catalog_changed(snapshot)
        self.fleet.refresh_estimates()

    async def aclose(self) -> None:
        """Stop everything ``start`` started, in reverse order."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._remotes is not None:
            self._remotes.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._remotes
            self._remotes = None
        try:
            await self.gateway.aclose()
            await self.fleet.aclose()
        finally:
            await self.figures.aclose()  # after the fleet: its last requests are recorded
            await self.upstream.aclose()

    def close(self) -> None:
        self.store.close()


def _model_of(fleet: Fleet, instance_id: str) -> str | None:
    record = fleet.configs.find(instance_id)
    return record.model_id if record is not None else None


def build_services(settings: Settings) -> Services:
    """Open the store (migrating it) and build the services over it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.db_path)
    events = EventBus()
    catalog = Catalog(settings, store, events)
    ledger = MemoryLedger(store)
    ledger.load()
    leases = Leases(settings.gateway.queue_size, settings.gateway.retry_after_s)
    upstream = UpstreamPool(settings.gateway.timeouts.connect_s)
    memory = MemoryBudget(lambda: read_inventory(settings.memory))
    devices = memory.read_now().devices
    engines = EngineRegistry(
        {
            "llamacpp": LlamaCppEngine(
                settings.llamacpp, gpu_count=len(devices), measurements=ledger.lookup
            ),
            "command": CommandEngine(curated_commands(catalog.curated)),
            "vllm": VllmEngine(settings.vllm, {d.index: d.total_bytes for d in devices}),
            "remote": RemoteEngine(settings.remote),
            "ollama": OllamaEngine(settings.ollama, gpu_count=len(devices)),
        }
    )
    fleet = Fleet(
        settings,
        store,
        engines,
        catalog.get,
        memory=memory,
        ledger=ledger,
        leases=leases,
        transport=upstream,
        events=events,
    )
    presets = Presets(store, events)
    figures = Figures(settings, store, in_flight=lambda: leases.counts)
    gateway = Gateway(settings, catalog, fleet, figures, upstream)
    profiles = ProfileService(settings, store, catalog, presets, events, fleet)
    profiles.routing_listener = gateway.apply_profile
    # Admission enforces the deployment (max_models_loaded, per-device budgets) from here on.
    memory.govern(profiles.admission_limits, functools.partial(_model_of, fleet))
    return Services(
        settings=settings,
        store=store,
        catalog=catalog,
        figures=figures,
        engines=engines,
        fleet=fleet,
        events=events,
        presets=presets,
        profiles=profiles,
        gateway=gateway,
        upstream=upstream,
    )
