"""Memory admission decisions: pure, so every case is a plain call."""

from __future__ import annotations

from modelyard.engines.base import MemoryEstimate
from modelyard.routing.eviction import AdmissionLimits, RunningUse, format_bytes, plan_admission

MIB = 1024 * 1024
GIB = 1024 * MIB


def need(total: int, device: int | None = None) -> MemoryEstimate:
    return MemoryEstimate(weights=total, kv_cache=0, compute=0, device=device)


def use(
    instance_id: str,
    size: int,
    last_used: float,
    *,
    pinned: bool = False,
    in_flight: int = 0,
    device: int | None = None,
) -> RunningUse:
    return RunningUse(instance_id, size, device, pinned, in_flight, last_used)


def test_fits_without_evicting() -> None:
    plan = plan_admission(need(2 * GIB), 8 * GIB, [use("a:01", 4 * GIB, 1.0)])
    assert plan.admit and plan.evict == () and plan.reason is None


def test_fits_exactly() -> None:
    plan = plan_admission(need(4 * GIB), 8 * GIB, [use("a:01", 4 * GIB, 1.0)])
    assert plan.admit and plan.evict == ()


def test_evicts_least_recently_used_only_as_many_as_needed() -> None:
    running = [
        use("new:01", 2 * GIB, last_used=30.0),
        use("old:01", 2 * GIB, last_used=10.0),
        use("mid:01", 2 * GIB, last_used=20.0),
    ]
    one = plan_admission(need(3 * GIB), 8 * GIB, running)
    assert one.admit and one.evict == ("old:01",)
    two = plan_admission(need(5 * GIB), 8 * GIB, running)
    assert two.admit and two.evict == ("old:01", "mid:01")


def test_pinned_and_in_flight_are_never_evicted() -> None:
    running = [
        use("pinned:01", 2 * GIB, last_used=1.0, pinned=True),
        use("busy:01", 2 * GIB, last_used=2.0, in_flight=1),
        use("idle:01", 2 * GIB, last_used=9.0),
    ]
    plan = plan_admission(need(3 * GIB), 7 * GIB, running)
    assert plan.admit and plan.evict == ("idle:01",)


def test_refused_evicts_nothing_and_lists_what_uses_the_memory() -> None:
    running = [
        use("gemma:01", 2 * GIB, last_used=1.0, pinned=True),
        use("qwen:01", 3 * GIB, last_used=2.0, in_flight=2),
        use("phi:01", 512 * MIB, last_used=3.0),
    ]
    plan = plan_admission(
        need(4 * GIB), 6 * GIB, running, total_bytes=6 * GIB + 512 * MIB, reserve_bytes=512 * MIB
    )
    assert not plan.admit
    assert plan.evict == ()
    assert plan.reason == (
        "needs 4.0 GiB, 512 MiB free of 6.0 GiB RAM budget (6.5 GiB total - 512 MiB reserve); "
        "in use: qwen:01 3.0 GiB (2 in flight), gemma:01 2.0 GiB (pinned), phi:01 512 MiB (idle)"
    )


def test_more_than_the_whole_budget_is_refused() -> None:
    plan = plan_admission(need(9 * GIB), 8 * GIB, [])
    assert not plan.admit
    assert plan.reason is not None
    assert "more than the whole budget" in plan.reason
    assert "nothing else is running" in plan.reason


def test_only_instances_on_the_same_device_count() -> None:
    running = [
        use("gpu:01", 7 * GIB, last_used=1.0, device=0),
        use("ram:01", 7 * GIB, last_used=2.0, device=None),
    ]
    on_gpu = plan_admission(need(2 * GIB, device=0), 8 * GIB, running)
    assert on_gpu.admit and on_gpu.evict == ("gpu:01",)
    on_gpu_one = plan_admission(need(2 * GIB, device=1), 8 * GIB, running)
    assert on_gpu_one.admit and on_gpu_one.evict == ()
    refused = plan_admission(need(2 * GIB, device=1), GIB, running)
    assert refused.reason is not None and "GPU 1 budget" in refused.reason


def test_ties_in_last_use_are_broken_by_id() -> None:
    running = [use("b:01", GIB, 5.0), use("a:01", GIB, 5.0)]
    plan = plan_admission(need(GIB), 2 * GIB, running)
    assert plan.evict == ("a:01",)


def test_overhead_counts_in_what_is_needed() -> None:
    request = MemoryEstimate(weights=GIB, kv_cache=0, compute=0, overhead=GIB)
    assert not plan_admission(request, GIB + MIB, []).admit


def test_format_bytes() -> None:
    assert format_bytes(512 * MIB) == "512 MiB"
    assert format_bytes(GIB + GIB // 5) == "1.2 GiB"
    assert format_bytes(0) == "0 MiB"


# -- max_models_loaded ---------------------------------------------------------------------


def of(model: str, instance: str, last_used: float, **kw: bool | int) -> RunningUse:
    pinned, in_flight = bool(kw.get("pinned", False)), int(kw.get("in_flight", 0))
    return RunningUse(instance, GIB, None, pinned, in_flight, last_used, model_id=model)


def test_a_new_model_over_the_limit_evicts_the_least_recently_used_model() -> None:
    """Prevents max_models_loaded staying advisory: a third model with two loaded must
    unload the older one (every instance of it), not just start."""
    running = [of("a", "a:01", 5.0), of("a", "a:02", 1.0), of("b", "b:01", 3.0)]
    plan = plan_admission(need(GIB), 100 * GIB, running, model_id="c", max_models_loaded=2)
    assert plan.admit and plan.evict == ("b:01",)  # a was used last at 5.0, b at 3.0


def test_another_instance_of_a_loaded_model_needs_no_slot() -> None:
    running = [of("a", "a:01", 1.0), of("b", "b:01", 2.0)]
    plan = plan_admission(need(GIB), 100 * GIB, running, model_id="a", max_models_loaded=2)
    assert plan.admit and plan.evict == ()


def test_under_the_limit_nothing_is_evicted() -> None:
    plan = plan_admission(
        need(GIB), 100 * GIB, [of("a", "a:01", 1.0)], model_id="b", max_models_loaded=2
    )
    assert plan.admit and plan.evict == ()


def test_a_model_with_one_busy_instance_is_not_unloaded() -> None:
    running = [
        of("a", "a:01", 1.0),
        of("a", "a:02", 1.0, in_flight=1),
        of("b", "b:01", 9.0),
    ]
    plan = plan_admission(need(GIB), 100 * GIB, running, model_id="c", max_models_loaded=2)
    assert plan.admit and plan.evict == ("b:01",)


def test_refused_naming_the_models_when_all_are_busy_or_pinned() -> None:
    running = [of("a", "a:01", 1.0, pinned=True), of("b", "b:01", 2.0, in_flight=2)]
    plan = plan_admission(need(GIB), 100 * GIB, running, model_id="c", max_models_loaded=2)
    assert not plan.admit and plan.evict == () and plan.over_model_limit
    assert plan.reason is not None
    assert "max_models_loaded=2" in plan.reason
    assert "a (pinned)" in plan.reason and "b (2 in flight)" in plan.reason


def test_the_slot_victim_also_frees_its_memory() -> None:
    running = [of("a", "a:01", 1.0), of("b", "b:01", 2.0)]
    # 3 GiB budget, 2 GiB held: 2 GiB more needs one GiB freed; evicting a for the slot does
    plan = plan_admission(need(2 * GIB), 3 * GIB, running, model_id="c", max_models_loaded=2)
    assert plan.admit and plan.evict == ("a:01",)


def test_memory_then_needs_more_than_the_slot_victim() -> None:
    running = [of("a", "a:01", 1.0), of("b", "b:01", 2.0)]
    plan = plan_admission(need(2 * GIB), 2 * GIB, running, model_id="c", max_models_loaded=2)
    assert plan.admit and plan.evict == ("a:01", "b:01")


def test_limits_cap_the_budget_of_the_devices_they_name() -> None:
    limits = AdmissionLimits(2, gpu_budgets=(10 * GIB,))
    assert limits.budget(0, 20 * GIB) == 10 * GIB
    assert limits.budget(0, 5 * GIB) == 5 * GIB
    assert limits.budget(1, 20 * GIB) == 20 * GIB  # past the tuple: not capped
    assert limits.budget(None, 20 * GIB) == 20 * GIB
    assert AdmissionLimits(ram_budget=GIB).budget(None, 20 * GIB) == GIB
