"""Profile validation: every problem named at once; examples valid on the bundled model."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from modelyard.errors import ValidationFailed
from modelyard.profiles.files import EXAMPLES
from modelyard.profiles.presets import BUILTIN
from modelyard.profiles.schema import Profile, check_profile

QWEN = "qwen2.5-coder-0.5b-instruct-awq-q4_k_m"
SMOLLM = "smollm2-135m-instruct.q4_1"
MINILM = "all-minilm-l6-v2-f16"
BUNDLED = {QWEN, SMOLLM, MINILM}
PRESETS = {p.name for p in BUILTIN}


def example(name: str) -> Any:
    raw = (resources.files("modelyard.profiles") / "examples" / f"{name}.yaml").read_text()
    return yaml.safe_load(raw)


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_are_valid_for_the_bundled_models(name: str) -> None:
    profile = check_profile(example(name), BUNDLED, PRESETS)
    assert profile.name == name
    assert set(profile.enabled_models) <= BUNDLED


def test_infinite_max_score_reads_as_unbounded() -> None:
    profile = check_profile(example("development"), BUNDLED, PRESETS)
    assert profile.tier_config[0].max_score is None
    assert "max_score" not in profile.to_yaml_data()["tier_config"][0]


def test_every_unknown_model_and_bad_field_is_named_in_one_message() -> None:
    data = {
        "name": "broken",
        "enabled_models": ["a", "ghost-1"],
        "defaults": {"auto": "ghost-2", "tiers": {"fast": "ghost-3"}},
        "fallbacks": {"a": ["ghost-4"]},
        "instances": [{"model": "ghost-5"}, {"model": "a", "preset": "nope"}],
    }
    with pytest.raises(ValidationFailed) as caught:
        check_profile(data, {"a"}, PRESETS)
    problems = caught.value.extra["problems"]
    for where in (
        "enabled_models[1]: unknown model 'ghost-1'",
        "defaults.auto: unknown model 'ghost-2'",
        "defaults.tiers.fast: unknown model 'ghost-3'",
        "fallbacks.a[0]: unknown model 'ghost-4'",
        "instances[0].model: unknown model 'ghost-5'",
        "instances[1].preset: unknown preset 'nope'",
    ):
        assert where in problems
        assert where in caught.value.message
    assert caught.value.param == "enabled_models[1]"


def test_shape_errors_are_all_listed_with_their_path() -> None:
    data = {
        "name": "Bad Name",
        "tier_config": [{"name": "huge", "expected_time_seconds": -1}],
        "load_balancing": {"strategy": "dice"},
        "colour": "red",
    }
    with pytest.raises(ValidationFailed) as caught:
        check_profile(data, set())
    text = caught.value.message
    for field in (
        "name:",
        "tier_config[0].name:",
        "tier_config[0].expected_time_seconds:",
        "load_balancing.strategy:",
        "colour:",
    ):
        assert field in text
    assert text.startswith("profile: 5 problems")


def test_instances_must_name_enabled_models_and_two_stage_tiers_must_exist() -> None:
    data = {
        "name": "p",
        "enabled_models": ["a"],
        "tier_config": [{"name": "fast", "expected_time_seconds": 1}],
        "two_stage": {"enabled": True, "stage1_tier": "fast", "stage2_tier": "powerful"},
        "instances": [{"model": "b"}],
    }
    with pytest.raises(ValidationFailed) as caught:
        check_profile(data, {"a", "b"})
    assert caught.value.extra["problems"] == [
        "instances[0].model: 'b' is not in enabled_models",
        "two_stage.stage2_tier: tier 'powerful' is not in tier_config",
    ]


def test_the_older_layout_with_a_profile_block_is_accepted() -> None:
    data = {"profile": {"name": "old", "description": "from the seed"}, "enabled_models": ["a"]}
    profile = check_profile(data, {"a"})
    assert (profile.name, profile.description) == ("old", "from the seed")


def test_round_trip_through_yaml_data() -> None:
    profile = check_profile(example("production"), BUNDLED, PRESETS)
    assert Profile.model_validate(profile.to_yaml_data()) == profile
