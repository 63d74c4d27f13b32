"""The memory inventory: config values win; otherwise the machine (psutil, NVML) answers."""

from __future__ import annotations

import psutil
import pytest

from modelyard.fleet.memory import read_inventory, read_nvidia_gpus
from modelyard.settings import GpuMemory, MemorySettings

GIB = 1024**3


def test_config_values_win() -> None:
    settings = MemorySettings(
        ram_bytes=16 * GIB,
        gpus=[GpuMemory(name="a", total_bytes=8 * GIB), GpuMemory(name="b", total_bytes=4 * GIB)],
        reserve_bytes=GIB,
    )
    inventory = read_inventory(settings)
    assert inventory.ram_total_bytes == inventory.ram_available_bytes == 16 * GIB
    assert inventory.ram_origin == "config"
    assert [(d.index, d.name, d.total_bytes, d.free_bytes) for d in inventory.devices] == [
        (0, "a", 8 * GIB, 8 * GIB),
        (1, "b", 4 * GIB, 4 * GIB),
    ]
    assert inventory.budget(None) == 15 * GIB
    assert inventory.budget(1) == 3 * GIB
    assert inventory.total(0) == 8 * GIB


def test_an_empty_gpu_list_means_none() -> None:
    assert read_inventory(MemorySettings(gpus=[])).devices == ()


def test_ram_comes_from_psutil_when_not_configured() -> None:
    inventory = read_inventory(MemorySettings(gpus=[]))
    assert inventory.ram_origin == "machine"
    assert inventory.ram_total_bytes == psutil.virtual_memory().total
    assert 0 < inventory.ram_available_bytes <= inventory.ram_total_bytes


def test_no_gpu_on_this_machine_means_no_devices() -> None:
    if read_nvidia_gpus():
        pytest.skip("this machine has an NVIDIA GPU")
    assert read_inventory(MemorySettings()).devices == ()


def test_budget_is_never_negative_and_unknown_gpus_raise() -> None:
    inventory = read_inventory(MemorySettings(ram_bytes=GIB, gpus=[], reserve_bytes=2 * GIB))
    assert inventory.budget(None) == 0
    with pytest.raises(KeyError):
        inventory.budget(0)
