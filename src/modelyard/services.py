"""The composition root: builds every service once. The app, the CLI and the tests use it."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.settings import Settings
from modelyard.store import Store


@dataclass
class Services:
    """Every long-lived service, wired together. Close with ``close()``."""

    settings: Settings
    store: Store

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings) -> Services:
    """Open the store (migrating it) and build the services over it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.db_path)
    return Services(settings=settings, store=store)
