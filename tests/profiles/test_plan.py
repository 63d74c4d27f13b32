"""The activation plan: which models to enable or disable, which instances to create,
start and stop. Pure, so every rule is checked without a process."""

from __future__ import annotations

from typing import Any

from modelyard.profiles.plan import CurrentInstance, NewInstance, Persona, plan_activation
from modelyard.profiles.schema import Profile

PRESETS = {"concise": "Be brief."}


def profile(**data: Any) -> Profile:
    return Profile.model_validate({"name": "p", **data})


def inst(id: str, running: bool = False, **persona: Any) -> CurrentInstance:
    return CurrentInstance(id, id.rsplit(":", 1)[0], Persona(**persona), running)


def test_enabled_models_become_exactly_the_enabled_set() -> None:
    plan = plan_activation(
        profile(enabled_models=["a", "b"]), {"a": True, "b": False, "c": True}, [], {}
    )
    assert plan.enable == ("b",)
    assert plan.disable == ("c",)


def test_an_empty_enabled_list_changes_no_flag_and_no_instance() -> None:
    plan = plan_activation(profile(), {"a": True, "b": False}, [inst("a:01", True)], {})
    assert plan.empty


def test_instances_of_disabled_models_stop() -> None:
    current = [inst("c:01", True), inst("c:02", False)]
    plan = plan_activation(profile(enabled_models=["a"]), {"a": True, "c": True}, current, {})
    assert plan.stop == ("c:01",)


def test_wanted_instances_are_created_and_started_unless_on_demand() -> None:
    p = profile(
        enabled_models=["a"],
        instances=[
            {"model": "a", "count": 2},
            {"model": "a", "preset": "concise", "display_name": "short", "on_demand": True},
        ],
    )
    plan = plan_activation(p, {"a": True}, [], PRESETS)
    assert plan.create == (
        NewInstance("a", Persona(), start=True),
        NewInstance("a", Persona(), start=True),
        NewInstance(
            "a", Persona(display_name="short", system_prompt="Be brief.", on_demand=True), False
        ),
    )
    assert plan.start == () and plan.stop == ()


def test_existing_instances_with_the_same_persona_are_reused_not_recreated() -> None:
    p = profile(enabled_models=["a"], instances=[{"model": "a", "display_name": "x"}])
    current = [inst("a:01", False), inst("a:02", False, display_name="x")]
    plan = plan_activation(p, {"a": True}, current, {})
    assert plan.create == ()
    assert plan.start == ("a:02",)


def test_running_matches_are_unchanged_and_unmatched_ones_stop_never_deleted() -> None:
    p = profile(enabled_models=["a"], instances=[{"model": "a"}])
    current = [inst("a:01", True), inst("a:02", True), inst("b:01", True)]
    plan = plan_activation(p, {"a": True, "b": False}, current, {})
    assert plan.unchanged == ("a:01",)
    assert plan.stop == ("a:02", "b:01")
    assert plan.start == () and plan.create == ()


def test_switching_back_and_forth_reuses_the_same_instances() -> None:
    dev = profile(enabled_models=["a"], instances=[{"model": "a", "display_name": "dev"}])
    prod = profile(enabled_models=["a"], instances=[{"model": "a", "count": 2}])
    current = [inst("a:01", True, display_name="dev"), inst("a:02"), inst("a:03")]
    to_prod = plan_activation(prod, {"a": True}, current, {})
    assert (to_prod.start, to_prod.stop, to_prod.create) == (("a:02", "a:03"), ("a:01",), ())
    after = [inst("a:01", False, display_name="dev"), inst("a:02", True), inst("a:03", True)]
    back = plan_activation(dev, {"a": True}, after, {})
    assert (back.start, back.stop, back.create) == (("a:01",), ("a:02", "a:03"), ())


def test_display_names_are_matched_as_the_fleet_cleans_them() -> None:
    p = profile(enabled_models=["a"], instances=[{"model": "a", "display_name": " <b>x</b>  y "}])
    plan = plan_activation(p, {"a": True}, [inst("a:01", True, display_name="x y")], {})
    assert plan.empty and plan.unchanged == ("a:01",)


def test_models_the_catalog_does_not_hold_are_not_enabled() -> None:
    plan = plan_activation(profile(enabled_models=["gone"]), {"a": True}, [], {})
    assert (plan.enable, plan.disable) == ((), ("a",))
