"""Deployment suggestion from the hardware, and the overrides laid over it."""

from __future__ import annotations

from typing import get_args

import pytest

from modelyard.errors import ValidationFailed
from modelyard.profiles.deployment import (
    GIB,
    PROFILES,
    Hardware,
    Override,
    models_for,
    named,
    pick,
    resolve,
    suggest,
)
from modelyard.routing.eviction import AdmissionLimits
from modelyard.settings import DeploymentProfileName

RESERVE = GIB // 2


def test_a_16_gb_card_is_not_a_96_gb_card() -> None:
    small = suggest(Hardware(64 * GIB, (16 * GIB,), RESERVE))
    big = suggest(Hardware(64 * GIB, (96 * GIB,), RESERVE))
    assert small.device == big.device == "gpu"
    assert small.memory_budget_bytes == int(16 * GIB * 0.9) - RESERVE
    assert (small.max_models_loaded, big.max_models_loaded) == (2, 4)
    assert big.memory_budget_bytes > 5 * small.memory_budget_bytes


def test_cpu_only_uses_half_the_ram() -> None:
    cpu = suggest(Hardware(32 * GIB, (), RESERVE))
    assert cpu.device == "cpu"
    assert cpu.memory_budget_bytes == 16 * GIB - RESERVE
    assert cpu.max_models_loaded == 2
    assert "no GPU" in cpu.reasons[0]


def test_several_gpus_hold_at_least_one_model_each() -> None:
    assert suggest(Hardware(8 * GIB, (4 * GIB,) * 3)).max_models_loaded == 3


def test_model_counts_grow_with_the_budget() -> None:
    counts = [models_for(g * GIB) for g in (0, 8, 16, 32, 64, 96, 128, 200)]
    assert counts == [1, 1, 2, 3, 4, 5, 6, 8]
    assert counts == sorted(counts)


def test_a_tiny_machine_never_gets_a_negative_budget() -> None:
    assert suggest(Hardware(GIB // 2, (), GIB)).memory_budget_bytes == 0


def test_profile_overrides_config_overrides_suggestion() -> None:
    hardware = Hardware(32 * GIB, (16 * GIB,))
    base = suggest(hardware)
    assert resolve(hardware, Override(), None) == base
    by_config = resolve(hardware, Override(memory_budget_bytes=10 * GIB))
    assert (by_config.memory_budget_bytes, by_config.source) == (10 * GIB, "config")
    assert by_config.device_budgets == (10 * GIB,)
    assert by_config.max_models_loaded == base.max_models_loaded
    by_profile = resolve(
        hardware, Override(memory_budget_bytes=10 * GIB), Override(max_models_loaded=1)
    )
    assert (by_profile.memory_budget_bytes, by_profile.max_models_loaded) == (10 * GIB, 1)
    assert by_profile.source == "profile"


# -- named deployment profiles ------------------------------------------------------------


def test_the_named_profiles_are_the_names_settings_accept() -> None:
    """Prevents a profile added to PROFILES (or to the settings' Literal) but not the other:
    a name the config accepts would then fail at the first admission."""
    assert {p.name for p in PROFILES} == set(get_args(DeploymentProfileName))


def test_the_largest_profile_that_fits_is_picked_with_its_reason() -> None:
    cases = {
        (): "cpu",
        (16 * GIB,): "gpu-16gb",
        (int(15.99 * GIB),): "gpu-16gb",  # an RTX 4080 reports 16376 MiB
        (int(22.5 * GIB),): "gpu-24gb",  # an L4 "24 GB" reports 22.5 GiB
        (24 * GIB,): "gpu-24gb",
        (16 * GIB, 16 * GIB): "gpu-2x16gb",
        (24 * GIB, 16 * GIB): "gpu-2x16gb",
        (80 * GIB,): "gpu-24gb",
        (int(95.6 * GIB),): "gpu-96gb",
        (139 * GIB,): "gpu-96gb",
    }
    for gpus, name in cases.items():
        profile, why = pick(Hardware(64 * GIB, gpus, RESERVE))
        assert profile is not None and profile.name == name, gpus
        assert name in why and ("largest" in why or name == "cpu")


def test_a_gpu_that_fits_no_profile_keeps_budgets_from_the_hardware() -> None:
    profile, why = pick(Hardware(32 * GIB, (8 * GIB,)))
    assert profile is None and "no named profile fits" in why
    found = suggest(Hardware(32 * GIB, (8 * GIB,), RESERVE))
    assert (found.name, found.device, found.max_models_loaded) == (None, "gpu", 1)
    assert found.device_budgets == (int(8 * GIB * 0.9) - RESERVE,)


def test_a_picked_profile_takes_its_budget_from_the_card_and_its_limits_from_the_table() -> None:
    """An 80 GB card fits gpu-24gb at most: its budget must still be the card's, not 24 GB's
    (else enforcing the budget would shrink what fitted before)."""
    found = suggest(Hardware(64 * GIB, (80 * GIB,), RESERVE))
    assert found.name == "gpu-24gb" and found.source == "suggested"
    assert found.device_budgets == (int(80 * GIB * 0.9) - RESERVE,)
    assert (found.max_models_loaded, found.ctx, found.parallel) == (2, 16384, 2)
    assert found.limits() == AdmissionLimits(2, gpu_budgets=found.device_budgets)


def test_a_profile_set_by_hand_caps_each_gpu_at_its_size() -> None:
    hardware = Hardware(64 * GIB, (24 * GIB, 24 * GIB), RESERVE)
    found = resolve(hardware, Override(profile="gpu-16gb"))
    assert (found.name, found.source) == ("gpu-16gb", "config")
    assert found.device_budgets == (int(16 * GIB * 0.9) - RESERVE,) * 2
    assert any("set by the config" in reason for reason in found.reasons)


def test_the_active_profile_names_a_profile_over_the_config() -> None:
    hardware = Hardware(64 * GIB, (96 * GIB,), RESERVE)
    found = resolve(
        hardware,
        Override(profile="gpu-24gb", max_models_loaded=1),
        Override(profile="cpu"),
    )
    assert (found.name, found.device, found.source) == ("cpu", "cpu", "profile")
    assert found.max_models_loaded == 3  # the cpu profile's (for 32 GiB), over the config's 1
    assert found.limits() == AdmissionLimits(3, ram_budget=32 * GIB - RESERVE)


def test_the_budget_override_is_shared_by_the_gpus() -> None:
    hardware = Hardware(64 * GIB, (16 * GIB, 16 * GIB))
    found = resolve(hardware, Override(memory_budget_bytes=20 * GIB))
    assert found.device_budgets == (10 * GIB, 10 * GIB)


def test_an_unknown_profile_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationFailed) as info:
        named("gpu-13gb")
    assert "gpu-13gb" in info.value.message and "gpu-16gb" in info.value.message
