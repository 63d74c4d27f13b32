"""Routing decisions: resolution, balancing, health and fallback, as pure functions."""

from __future__ import annotations

from modelyard.catalog.model import Model
from modelyard.routing.balance import order
from modelyard.routing.fallback import (
    Candidate,
    PlanConfig,
    ProfileRouting,
    candidates,
    reason_after,
    with_profile,
)
from modelyard.routing.health import (
    HEALTHY,
    HealthPolicy,
    begin_probe,
    cooldown_s,
    on_failure,
    score,
    verdict,
)
from modelyard.routing.resolve import ResolveConfig, Resolved, Unresolved, fits, resolve
from modelyard.routing.view import InstanceInfo, RoutingView, build


def model(model_id: str, **fields: object) -> Model:
    return Model(id=model_id, name=model_id, source="curated", **fields)  # type: ignore[arg-type]


def inst(instance_id: str, state: str = "ready", **fields: object) -> InstanceInfo:
    return InstanceInfo(
        id=instance_id,
        model_id=instance_id.rsplit(":", 1)[0],
        state=state,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


MODELS = (
    model(
        "gemma-3-270m",
        tier="fast",
        parameters_b=0.27,
        display_name="Gemma Tiny",
        ollama_name="gemma3:270m",
        ollama_names=("gemma3:270m", "gemma3:latest"),
        roles={"caption": 40},
        memory_bytes=400,
    ),
    model(
        "qwen-coder-7b",
        tier="fast",
        parameters_b=7.0,
        coder=True,
        roles={"code": 90, "caption": 10},
        memory_bytes=5000,
    ),
    model(
        "qwen-coder-32b",
        tier="powerful",
        parameters_b=32.0,
        roles={"code": 95},
        memory_bytes=20_000,
    ),
    model("llama-8b", tier="balanced", parameters_b=8.0, enabled=False),
    model("broken", tier="balanced", error="not a GGUF file"),
    model("nomic-embed", embedding=True, tier="fast", parameters_b=0.1),
)


def view(*instances: InstanceInfo, free: int | None = None) -> RoutingView:
    return build(MODELS, instances, free)


def ok(result: Resolved | Unresolved) -> Resolved:
    assert isinstance(result, Resolved), result
    return result


# -- resolve -------------------------------------------------------------------------------


def test_instance_id_pins_the_instance() -> None:
    got = ok(resolve("gemma-3-270m:02", view(inst("gemma-3-270m:01"), inst("gemma-3-270m:02"))))
    assert (got.model_id, got.instance_id, got.reason) == (
        "gemma-3-270m",
        "gemma-3-270m:02",
        "instance",
    )


def test_model_id_display_name_and_ollama_names() -> None:
    v = view()
    assert ok(resolve("gemma-3-270m", v)).reason == "model"
    assert ok(resolve("  GEMMA-3-270M ", v)).model_id == "gemma-3-270m"
    shown = ok(resolve("gemma tiny", v))
    assert (shown.model_id, shown.reason) == (
        "gemma-3-270m",
        "display-name:gemma tiny->gemma-3-270m",
    )
    assert ok(resolve("gemma3:270m", v)).reason.startswith("ollama:")
    assert ok(resolve("gemma3", v)).model_id == "gemma-3-270m"  # name alone means :latest


def test_instance_display_name_pins_that_instance() -> None:
    got = ok(resolve("Pirate", view(inst("gemma-3-270m:01", display_name="Pirate"))))
    assert got.instance_id == "gemma-3-270m:01"


def test_earlier_kinds_win_a_clash() -> None:
    """A model id beats another model's display name."""
    models = (model("alpha"), model("beta", display_name="alpha"))
    assert ok(resolve("alpha", build(models, ()))).model_id == "alpha"


def test_alias_ranks_before_ollama_names_and_can_point_at_a_tier() -> None:
    config = ResolveConfig(aliases={"gemma3": "qwen-coder-7b", "quick": "tier:fast"})
    assert ok(resolve("gemma3", view(), config)).model_id == "qwen-coder-7b"
    quick = ok(resolve("quick", view(), config))
    assert quick.reason.startswith("alias:quick->tier:fast->")


def test_alias_loop_is_unresolved() -> None:
    config = ResolveConfig(aliases={"a": "b", "b": "a"})
    assert isinstance(resolve("a", view(), config), Unresolved)


def test_tier_prefers_running_then_largest() -> None:
    assert ok(resolve("tier:fast", view())).model_id == "qwen-coder-7b"
    running = ok(resolve("tier:fast", view(inst("gemma-3-270m:01"))))
    assert running.model_id == "gemma-3-270m"
    assert running.reason == "tier:fast->gemma-3-270m"


def test_tier_default_from_config_and_unknown_tier() -> None:
    config = ResolveConfig(tier_defaults={"fast": "gemma-3-270m"})
    assert ok(resolve("tier:fast", view(), config)).model_id == "gemma-3-270m"
    bad = resolve("tier:huge", view())
    assert isinstance(bad, Unresolved) and "tier:fast" in bad.close
    empty = resolve("tier:balanced", view())  # only a disabled and a broken model
    assert isinstance(empty, Unresolved)


def test_role_highest_priority_that_fits() -> None:
    got = ok(resolve("role:code", view()))
    assert (got.model_id, got.reason) == (
        "qwen-coder-32b",
        "role:code(priority 95)->qwen-coder-32b",
    )
    assert ok(resolve("role:code", view(free=6000))).model_id == "qwen-coder-7b"
    assert isinstance(resolve("role:code", view(free=100)), Unresolved)
    # A model already running fits whatever the free memory says.
    running = view(inst("qwen-coder-32b:01"), free=100)
    assert ok(resolve("role:code", running)).model_id == "qwen-coder-32b"
    assert isinstance(resolve("role:poetry", view()), Unresolved)


def test_auto_uses_the_default_or_a_running_model() -> None:
    assert ok(resolve("auto", view(), ResolveConfig(default_model="gemma3"))).reason.startswith(
        "auto->ollama:gemma3"
    )
    assert ok(resolve("auto", view(inst("qwen-coder-7b:01")))).model_id == "qwen-coder-7b"
    assert isinstance(resolve("auto", view()), Unresolved)


def test_the_active_profile_wins_over_the_settings() -> None:
    base = PlanConfig(
        strategy="random",
        fallbacks={"qwen-coder-32b": ["gemma3"]},
        resolve=ResolveConfig(default_model="gemma3", tier_defaults={"fast": "gemma3"}),
    )
    assert with_profile(base, None) is base
    profile = ProfileRouting(
        auto="qwen-coder-7b",
        roles={"code": "qwen-coder-7b"},
        fallbacks={"qwen-coder-7b": ["gemma3"]},
        strategy="round_robin",
    )
    merged = with_profile(base, profile)
    assert merged.strategy == "round_robin"
    assert merged.resolve.tier_defaults == {"fast": "gemma3"}  # the profile left tiers alone
    assert dict(merged.fallbacks or {}) == {
        "qwen-coder-32b": ["gemma3"],
        "qwen-coder-7b": ["gemma3"],
    }
    assert ok(resolve("auto", view(), merged.resolve)).model_id == "qwen-coder-7b"
    pinned = ok(resolve("role:code", view(), merged.resolve))  # not the priority-95 model
    assert (pinned.model_id, pinned.reason) == ("qwen-coder-7b", "role:code->model")
    # Load balancing off in the profile keeps the configured strategy.
    assert with_profile(base, ProfileRouting()).strategy == "random"


def test_disabled_and_broken_models_are_refused_with_the_reason() -> None:
    disabled = resolve("llama-8b", view())
    assert isinstance(disabled, Unresolved) and "disabled" in disabled.message
    broken = resolve("broken", view())
    assert isinstance(broken, Unresolved) and "not a GGUF" in broken.message


def test_unknown_name_lists_close_names_as_spelt() -> None:
    got = resolve("qwen-coder-8b", view())
    assert isinstance(got, Unresolved)
    assert "qwen-coder-7b" in got.close
    assert "llama-8b" not in got.close  # disabled models are not suggested
    assert ok(resolve("Gemma Tiny", view())).model_id == "gemma-3-270m"
    assert "Gemma Tiny" in resolve("Gemma Tin", view()).close  # type: ignore[union-attr]


def test_fits() -> None:
    assert fits(MODELS[0], None)
    assert fits(MODELS[0], 400)
    assert not fits(MODELS[0], 399)
    assert fits(model("unknown-size"), 1)


# -- balance -------------------------------------------------------------------------------


def test_round_robin_rotates() -> None:
    three = [inst("m:01"), inst("m:02"), inst("m:03")]
    firsts = [order(three, "round_robin", turn, 0.0)[0].id for turn in range(4)]
    assert firsts == ["m:01", "m:02", "m:03", "m:01"]
    assert len(order(three, "round_robin", 7, 0.0)) == 3


def test_least_loaded_prefers_fewest_in_flight_and_spreads_ties() -> None:
    loads = [inst("m:01", in_flight=3), inst("m:02", in_flight=0), inst("m:03", in_flight=1)]
    assert [i.id for i in order(loads, "least_loaded", 0, 0.0)] == ["m:02", "m:03", "m:01"]
    ties = [inst("m:01"), inst("m:02")]
    assert {order(ties, "least_loaded", t, 0.0)[0].id for t in range(2)} == {"m:01", "m:02"}


def test_random_uses_the_dice() -> None:
    three = [inst("m:01"), inst("m:02"), inst("m:03")]
    assert order(three, "random", 0, 0.0)[0].id == "m:01"
    assert order(three, "random", 0, 0.99)[0].id == "m:03"
    assert order([], "random", 0, 0.5) == ()


# -- health --------------------------------------------------------------------------------

POLICY = HealthPolicy(
    failures_to_cooldown=3,
    recent_window_s=10,
    recent_failures=4,
    cooldown_base_s=1.0,
    cooldown_max_s=8.0,
)


def test_consecutive_failures_trip_a_cooldown_then_one_probe() -> None:
    h = HEALTHY
    for t in range(2):
        h = on_failure(h, float(t), POLICY, "refused")
        assert verdict(h, float(t), POLICY) == "healthy"
    h = on_failure(h, 2.0, POLICY, "refused")
    assert verdict(h, 2.5, POLICY) == "cooldown"
    assert score(h, 2.5, POLICY) == 0.0
    assert verdict(h, 3.0, POLICY) == "probe"
    h = begin_probe(h, 3.0)
    assert verdict(h, 3.1, POLICY) == "cooldown"  # only one probe at a time


def test_failed_probe_doubles_the_cooldown_up_to_the_cap() -> None:
    h = HEALTHY
    for _ in range(3):
        h = on_failure(h, 0.0, POLICY, "x")
    assert h.cooldown_until == 1.0
    h = on_failure(begin_probe(h, 1.0), 1.0, POLICY, "x")
    assert h.cooldown_until == 3.0
    assert [cooldown_s(n, POLICY) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_recent_failures_trip_even_with_successes_between() -> None:
    h = HEALTHY
    for t in range(2):
        h = on_failure(h, float(t), POLICY, "x")
    h = h.__class__(consecutive=0, recent=h.recent)  # as if successes came between
    h = on_failure(h, 2.0, POLICY, "x")
    assert verdict(h, 2.0, POLICY) == "healthy"
    h = on_failure(h.__class__(consecutive=0, recent=h.recent), 3.0, POLICY, "x")
    assert verdict(h, 3.0, POLICY) == "cooldown"
    assert 0.0 < score(on_failure(HEALTHY, 0.0, POLICY, "x"), 0.0, POLICY) < 1.0


def test_a_lost_probe_frees_the_slot_after_the_max_cooldown() -> None:
    h = HEALTHY
    for _ in range(3):
        h = on_failure(h, 0.0, POLICY, "x")
    h = begin_probe(h, 1.0)
    assert verdict(h, 8.9, POLICY) == "cooldown"
    assert verdict(h, 9.0, POLICY) == "probe"


# -- fallback ------------------------------------------------------------------------------


def plan(v: RoutingView, name: str, **kwargs: object) -> tuple[Candidate, ...]:
    config = PlanConfig(
        strategy="round_robin",
        fallbacks={"qwen-coder-32b": ["qwen-coder-7b", "tier:fast", "nope"]},
        policy=POLICY,
    )
    health = kwargs.pop("health", {})
    return candidates(ok(resolve(name, v)), v, health, config, now=100.0, **kwargs)  # type: ignore[arg-type]


def test_a_model_without_instances_gets_a_create_candidate() -> None:
    got = plan(view(), "gemma-3-270m")
    assert got == (Candidate("gemma-3-270m", None, "create", "model"),)


def test_ready_healthy_then_starting_then_on_demand_then_stopped() -> None:
    v = view(
        inst("gemma-3-270m:01", "stopped"),
        inst("gemma-3-270m:02", "starting"),
        inst("gemma-3-270m:03"),
        inst("gemma-3-270m:04", "stopped", on_demand=True),
        inst("gemma-3-270m:05", "error"),
        inst("gemma-3-270m:06", "stopping"),
    )
    got = [(c.instance_id, c.action) for c in plan(v, "gemma-3-270m")]
    assert got == [
        ("gemma-3-270m:03", "forward"),
        ("gemma-3-270m:02", "start"),
        ("gemma-3-270m:04", "start"),
        ("gemma-3-270m:01", "start"),
        ("gemma-3-270m:06", "start"),
        ("gemma-3-270m:05", "start"),
    ]


def test_a_persona_answers_only_a_request_that_names_it() -> None:
    """Regression: a request naming the model landed on any persona instance (a coder prompt
    answered a general question) when the model had no instance without one."""
    both = view(inst("gemma-3-270m:01", persona=True), inst("gemma-3-270m:02", "stopped"))
    assert [c.instance_id for c in plan(both, "gemma-3-270m")] == ["gemma-3-270m:02"]
    only = view(inst("gemma-3-270m:01", persona=True))
    assert plan(only, "gemma-3-270m") == (Candidate("gemma-3-270m", None, "create", "model"),)
    assert [c.instance_id for c in plan(only, "gemma-3-270m:01")] == ["gemma-3-270m:01"]


def test_pinned_instance_has_no_fallback() -> None:
    v = view(inst("qwen-coder-32b:01", "stopped"), inst("qwen-coder-7b:01"))
    got = plan(v, "qwen-coder-32b:01")
    assert got == (Candidate("qwen-coder-32b", "qwen-coder-32b:01", "start", "instance"),)


def test_cooldown_last_probe_first_and_fallback_chain_deduplicated() -> None:
    v = view(
        inst("qwen-coder-32b:01"),
        inst("qwen-coder-32b:02"),
        inst("qwen-coder-32b:03"),
        inst("qwen-coder-7b:01"),
    )
    tripped = HEALTHY
    for _ in range(3):
        tripped = on_failure(tripped, 99.5, POLICY, "refused")
    probe_ready = HEALTHY
    for _ in range(3):
        probe_ready = on_failure(probe_ready, 90.0, POLICY, "refused")
    health = {"qwen-coder-32b:01": tripped, "qwen-coder-32b:03": probe_ready}
    got = plan(v, "qwen-coder-32b", health=health)
    assert [(c.instance_id, c.probe, c.fallback) for c in got] == [
        ("qwen-coder-32b:03", True, False),
        ("qwen-coder-32b:02", False, False),
        ("qwen-coder-32b:01", False, False),
        ("qwen-coder-7b:01", False, True),
        # tier:fast resolves to qwen-coder-7b too (running, largest): listed once
    ]
    assert got[3].reason == "fallback:qwen-coder-7b"
    assert reason_after(got[3], "qwen-coder-32b:02", "connect refused") == (
        "fallback after qwen-coder-32b:02 failed: connect refused; fallback:qwen-coder-7b"
    )
    assert reason_after(got[1], "qwen-coder-32b:03", "timeout").startswith("retry after")


def test_fallback_to_a_model_with_no_instance_creates_one() -> None:
    got = plan(view(inst("qwen-coder-32b:01")), "qwen-coder-32b")
    assert [(c.model_id, c.action) for c in got] == [
        ("qwen-coder-32b", "forward"),
        ("qwen-coder-7b", "create"),
    ]
