"""The catalog snapshot: immutable, read without SQL, swapped and announced once per change."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelyard.catalog.catalog import Catalog
from modelyard.catalog.snapshot import CatalogSnapshot
from modelyard.errors import ModelNotFound
from modelyard.events import Event, EventBus, Subscription
from modelyard.settings import load_settings
from modelyard.store import Store
from tests.catalog.layouts import model

Q4_K_M = 15
MakeCatalog = Callable[..., Catalog]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    for name in ("tiny-1b-q4_k_m", "other-1b-q4_k_m"):
        model(arch="llama", name=name, size_label="1B", file_type=Q4_K_M)(root / f"{name}.gguf")
    return root


@pytest.fixture
def make_catalog(folder: Path) -> Iterator[MakeCatalog]:
    """A Catalog over the test's data dir; each call opens the same database file anew (as a
    second process would)."""
    stores: list[Store] = []

    def make(events: EventBus | None = None) -> Catalog:
        settings = load_settings(discovery={"default_model": False, "folders": [folder]})
        store = Store.open(settings.db_path)
        stores.append(store)
        return Catalog(settings, store, events)

    yield make
    for store in stores:
        store.close()


def statements(catalog: Catalog) -> list[str]:
    """Every statement the catalog's store runs from now on, in order."""
    seen: list[str] = []
    catalog._store._conn.set_trace_callback(seen.append)
    return seen


def test_snapshot_is_immutable(make_catalog: MakeCatalog) -> None:
    snapshot = make_catalog().load()

    assert isinstance(snapshot, CatalogSnapshot)
    assert list(snapshot) == ["other-1b-q4_k_m", "tiny-1b-q4_k_m"]
    assert snapshot.models == tuple(snapshot.values())
    with pytest.raises(AttributeError, match="immutable"):
        snapshot.version = 9  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        snapshot.models = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot["new"] = snapshot["tiny-1b-q4_k_m"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot["tiny-1b-q4_k_m"].tier = "powerful"  # type: ignore[misc]
    assert not hasattr(snapshot, "__dict__")


def test_get_raises_model_not_found_with_close_names_unless_given_a_default(
    make_catalog: MakeCatalog,
) -> None:
    snapshot = make_catalog().load()

    with pytest.raises(ModelNotFound, match="did you mean tiny-1b-q4_k_m"):
        snapshot.get("tiny-1b-q4_k")
    assert snapshot.get("tiny-1b-q4_k", None) is None
    assert "tiny-1b-q4_k" not in snapshot
    with pytest.raises(KeyError):
        snapshot["tiny-1b-q4_k"]


def test_reads_issue_no_sql_once_loaded_and_see_an_override_at_once(
    make_catalog: MakeCatalog,
) -> None:
    """The fleet reads the catalog per instance view on the event loop: a SELECT there blocked
    the loop on the disk for every view."""
    catalog = make_catalog()
    catalog.load()
    seen = statements(catalog)

    for _ in range(3):
        assert catalog.get("tiny-1b-q4_k_m").tier == "fast"
        assert len(catalog.models()) == 2
        assert catalog.curated() == []
    assert seen == []

    before = catalog.snapshot()
    changed = catalog.set_overrides("tiny-1b-q4_k_m", actor="test", tier="powerful")
    assert changed.tier == "powerful"
    seen.clear()

    assert catalog.get("tiny-1b-q4_k_m").tier == "powerful"
    assert [m.tier for m in catalog.models()] == ["fast", "powerful"]
    assert seen == []
    assert catalog.snapshot().version == before.version + 1
    assert before["tiny-1b-q4_k_m"].tier == "fast"  # a reader's old snapshot does not move


async def test_one_change_publishes_one_catalog_changed_event(make_catalog: MakeCatalog) -> None:
    bus = EventBus()
    catalog = make_catalog(bus)
    await asyncio.to_thread(catalog.load)
    heard: list[tuple[int, str]] = []
    remove = catalog.add_listener(
        lambda snap: heard.append((snap.version, threading.current_thread().name))
    )
    async with bus.subscribe() as sub:
        await asyncio.to_thread(
            catalog.set_overrides, "tiny-1b-q4_k_m", actor="test", tier="powerful"
        )
        await asyncio.to_thread(  # the same value again: nothing changes, nothing is said
            catalog.set_overrides, "tiny-1b-q4_k_m", actor="test", tier="powerful"
        )
        await asyncio.to_thread(catalog.clear_override, "tiny-1b-q4_k_m", "tier", actor="test")
        remove()
        await asyncio.to_thread(catalog.set_overrides, "other-1b-q4_k_m", actor="t", enabled=False)
        events = await _drain(sub)

    assert [(e.kind, e.data) for e in events] == [
        (
            "catalog.changed",
            {"version": 2, "cause": "override", "model_id": "tiny-1b-q4_k_m", "set": ["tier"]},
        ),
        (
            "catalog.changed",
            {"version": 3, "cause": "override", "model_id": "tiny-1b-q4_k_m", "cleared": "tier"},
        ),
        (
            "catalog.changed",
            {"version": 4, "cause": "override", "model_id": "other-1b-q4_k_m", "set": ["enabled"]},
        ),
    ]
    assert [v for v, _ in heard] == [2, 3]
    assert all(name != threading.main_thread().name for _, name in heard)  # the worker's


async def test_a_rescan_that_changes_the_catalog_is_one_event(
    make_catalog: MakeCatalog, folder: Path
) -> None:
    bus = EventBus()
    catalog = make_catalog(bus)
    catalog.load()
    async with bus.subscribe() as sub:
        catalog.rescan()  # unchanged inputs: nothing said
        (folder / "other-1b-q4_k_m.gguf").unlink()
        catalog.rescan()
        events = await _drain(sub)

    assert [(e.kind, e.data["cause"], e.data["removed"]) for e in events] == [
        ("catalog.changed", "rescan", ["other-1b-q4_k_m"])
    ]
    assert list(catalog.snapshot()) == ["tiny-1b-q4_k_m"]


def test_reload_picks_up_a_change_another_catalog_made(make_catalog: MakeCatalog) -> None:
    heard: list[CatalogSnapshot] = []
    server = make_catalog()
    server.load()
    server.add_listener(heard.append)
    cli = make_catalog()  # another process over the same database file
    cli.set_overrides("tiny-1b-q4_k_m", actor="cli", display_name="Tiny")

    assert server.get("tiny-1b-q4_k_m").display_name is None  # not read again by itself
    assert server.reload() is True
    assert server.get("tiny-1b-q4_k_m").display_name == "Tiny"
    assert server.reload() is False
    assert [s.version for s in heard] == [2]


def test_a_change_to_a_model_another_process_added_finds_it(
    make_catalog: MakeCatalog, folder: Path
) -> None:
    server = make_catalog()
    server.load()
    model(arch="llama", name="new", size_label="1B", file_type=Q4_K_M)(folder / "new-1b.gguf")
    make_catalog().rescan()

    updated = server.set_overrides("new-1b", actor="api", enabled=False)

    assert updated.enabled is False and "new-1b" in server.snapshot()


def test_concurrent_changes_swap_in_order(make_catalog: MakeCatalog) -> None:
    catalog = make_catalog()
    catalog.load()
    versions: list[int] = []
    catalog.add_listener(lambda snap: versions.append(snap.version))
    names = [f"Name {i}" for i in range(8)]

    threads = [
        threading.Thread(
            target=catalog.set_overrides,
            args=("tiny-1b-q4_k_m",),
            kwargs={"actor": "t", "display_name": name},
        )
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert versions == sorted(versions) and len(versions) == len(set(versions))
    last = catalog._store.audit_log(1)[0]["new"]["display_name"]
    assert catalog.get("tiny-1b-q4_k_m").display_name == last  # the latest write won


async def _drain(sub: Subscription) -> list[Event]:
    """Events delivered so far (publishing hops to this loop: let it run first)."""
    out: list[Event] = []
    while (event := await sub.get(within_s=0.2)) is not None:
        out.append(event)
    return out
