"""Memory the fleet may use, and what running servers reported they really used.

- ``read_inventory(settings.memory)`` reads system RAM (psutil) and NVIDIA GPUs (NVML, where
  present). Values set in the config win over what the machine says; tests set them.
- ``MemoryLedger`` keeps llama-server's reported buffer sizes per model and arguments in the
  store, so the next estimate for the same model and arguments uses them
  (``LlamaCppEngine(..., measurements=ledger.lookup)``).

Admission itself is a pure decision (``modelyard.routing.eviction.plan_admission``), acted on
by ``fleet.budget.MemoryBudget``, the one reader of the inventory at run time.
"""

from __future__ import annotations

import ctypes
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psutil

from modelyard.engines.base import MeasurementKey
from modelyard.settings import MemorySettings
from modelyard.store import measurements
from modelyard.store.db import Store

Origin = Literal["config", "machine"]


@dataclass(frozen=True)
class DeviceMemory:
    """One GPU. ``free_bytes`` equals ``total_bytes`` when the figure comes from the config."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int
    origin: Origin


@dataclass(frozen=True)
class MemoryInventory:
    """System RAM and GPUs at one moment, and the reserve kept free on each."""

    ram_total_bytes: int
    ram_available_bytes: int
    ram_origin: Origin
    devices: tuple[DeviceMemory, ...]
    reserve_bytes: int

    def total(self, device: int | None) -> int:
        """Total bytes of ``device`` (``None``: system RAM). Raises KeyError for no such GPU."""
        if device is None:
            return self.ram_total_bytes
        return self._device(device).total_bytes

    def budget(self, device: int | None) -> int:
        """What the fleet may hand out on ``device``: its total minus the reserve (never < 0)."""
        return max(self.total(device) - self.reserve_bytes, 0)

    def _device(self, index: int) -> DeviceMemory:
        for device in self.devices:
            if device.index == index:
                return device
        raise KeyError(f"no GPU {index}")


def read_inventory(settings: MemorySettings) -> MemoryInventory:
    """Read RAM and GPUs now. Never raises for a missing or broken NVIDIA driver (no GPUs).

    ``settings.ram_bytes`` replaces the machine's RAM (available = total then);
    ``settings.gpus`` replaces the GPUs, an empty list meaning none.
    """
    if settings.ram_bytes is not None:
        ram_total = ram_available = settings.ram_bytes
        ram_origin: Origin = "config"
    else:
        memory = psutil.virtual_memory()
        ram_total, ram_available, ram_origin = memory.total, memory.available, "machine"
    if settings.gpus is not None:
        devices = tuple(
            DeviceMemory(i, gpu.name, gpu.total_bytes, gpu.total_bytes, "config")
            for i, gpu in enumerate(settings.gpus)
        )
    else:
        devices = read_nvidia_gpus()
    return MemoryInventory(
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        ram_origin=ram_origin,
        devices=devices,
        reserve_bytes=settings.reserve_bytes,
    )


def read_nvidia_gpus() -> tuple[DeviceMemory, ...]:
    """NVIDIA GPUs through NVML; empty when the library or the driver is not there."""
    if not _nvml_loadable():
        return ()
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return ()
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            devices.append(
                DeviceMemory(index, str(name), int(info.total), int(info.free), "machine")
            )
        return tuple(devices)
    except pynvml.NVMLError:
        return ()
    finally:
        pynvml.nvmlShutdown()


def _nvml_loadable() -> bool:
    """Whether NVML's library loads, tried the way pynvml's nvmlInit tries it on Linux.

    pynvml defines hundreds of ctypes structures: importing it costs about 2 MB of resident
    memory, which a server on a machine without an NVIDIA driver need not carry.
    """
    if not sys.platform.startswith("linux"):
        return True  # let pynvml look where it looks on other systems
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


class MemoryLedger:
    """Reported buffer sizes per (model id, measurement key), in memory and in the store.

    The in-memory copy makes ``lookup`` cheap and free of I/O, so engines' estimates stay pure;
    ``record`` writes through to the store (a small synchronous write: async callers use
    ``asyncio.to_thread``). One owner: the fleet. The table keeps one row per
    (model, ctx, gpu_layers); the rest of the key travels in the row and must match to apply.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[tuple[str, MeasurementKey], dict[str, int]] = {}

    def load(self) -> None:
        """Read every stored measurement. Rows that do not parse are skipped."""
        for model_id, measured in measurements.load(self._store):
            entry = _decode(measured)
            if entry is not None:
                key, buffers = entry
                self._known[(model_id, key)] = buffers

    def record(self, model_id: str, key: MeasurementKey, buffers: Mapping[str, int]) -> None:
        """Keep ``buffers`` (as ``parse_memory_log`` returns them) for this model and key."""
        data = {"key": asdict(key), "buffers": dict(buffers)}
        measurements.put(self._store, model_id, key.ctx, key.gpu_layers, data)
        self._known = {
            known: value
            for known, value in self._known.items()
            if not (known[0] == model_id and _same_row(known[1], key))
        }
        self._known[(model_id, key)] = dict(buffers)

    def lookup(self, model_id: str, key: MeasurementKey) -> Mapping[str, int] | None:
        """The buffers recorded for exactly this model and key, or ``None``. No I/O."""
        return self._known.get((model_id, key))


def _same_row(a: MeasurementKey, b: MeasurementKey) -> bool:
    return a.ctx == b.ctx and a.gpu_layers == b.gpu_layers


def _decode(text: str) -> tuple[MeasurementKey, dict[str, int]] | None:
    try:
        data: Any = json.loads(text)
        key = MeasurementKey(**data["key"])
        buffers = {str(name): int(size) for name, size in data["buffers"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return key, buffers
