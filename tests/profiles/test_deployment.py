"""Deployment suggestion from the hardware, and the overrides laid over it."""

from __future__ import annotations

from modelyard.profiles.deployment import GIB, Hardware, models_for, resolve, suggest

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
    base = suggest(Hardware(32 * GIB, (16 * GIB,)))
    assert resolve(base, (None, None)) == base
    by_config = resolve(base, (10 * GIB, None))
    assert (by_config.memory_budget_bytes, by_config.source) == (10 * GIB, "config")
    assert by_config.max_models_loaded == base.max_models_loaded
    by_profile = resolve(base, (10 * GIB, 3), (None, 1))
    assert (by_profile.memory_budget_bytes, by_profile.max_models_loaded) == (10 * GIB, 1)
    assert by_profile.source == "profile"
