"""The composition root: builds every service once. The app, the CLI and the tests use it."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.catalog.catalog import Catalog
from modelyard.engines.command import CommandEngine
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.registry import EngineRegistry, curated_commands
from modelyard.events import EventBus
from modelyard.figures.service import Figures
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.memory import MemoryLedger, read_inventory
from modelyard.gateway.serving import Gateway
from modelyard.profiles.presets import Presets
from modelyard.profiles.service import ProfileService, fleet_events_to_bus
from modelyard.settings import Settings
from modelyard.store import Store


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

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings) -> Services:
    """Open the store (migrating it) and build the services over it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.db_path)
    catalog = Catalog(settings, store)
    ledger = MemoryLedger(store)
    ledger.load()
    gpus = len(read_inventory(settings.memory).devices)
    engines = EngineRegistry(
        {
            "llamacpp": LlamaCppEngine(
                settings.llamacpp, gpu_count=gpus, measurements=ledger.lookup
            ),
            "command": CommandEngine(curated_commands(catalog.curated)),
        }
    )
    fleet = Fleet(
        settings,
        store,
        engines,
        catalog.get,
        inventory=lambda: read_inventory(settings.memory),
        ledger=ledger,
    )
    events = EventBus()
    fleet.add_listener(fleet_events_to_bus(events))
    presets = Presets(store)
    figures = Figures(settings, store)
    gateway = Gateway(settings, catalog, fleet, figures)
    profiles = ProfileService(settings, store, catalog, presets, events, fleet)
    profiles.routing_listener = gateway.apply_profile
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
    )
