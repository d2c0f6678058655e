"""Personalizer's learning settings, service settings and feature lists ↔ banditrec's."""

from __future__ import annotations

import doctest

import pytest

import banditrec.personalizer.features as features_module
import banditrec.personalizer.settings as settings_module
from banditrec.config import AppConfig, SlotConfig, VWPolicyConfig
from banditrec.personalizer import (
    DEFAULT_LEARNING_SETTINGS,
    LearningSettingsError,
    learning_settings,
    namespaced,
    parse_learning_settings,
)
from banditrec.personalizer.settings import (
    config_patch,
    parse_duration,
    service_configuration,
)
from banditrec.policies import make_policy
from banditrec.serving.patch import patched_config


def test_doctests() -> None:
    for module in (features_module, settings_module):
        assert doctest.testmod(module).failed == 0


def test_personalizers_default_learning_settings() -> None:
    cfg = parse_learning_settings(DEFAULT_LEARNING_SETTINGS)
    assert cfg.explorer.type == "epsilon" and cfg.explorer.epsilon == 0.2
    assert (cfg.cb_type, cfg.learning_rate, cfg.power_t, cfg.interactions) == (
        "mtr",
        0.001,
        0.0,
        ["::"],
    )
    make_policy(cfg)  # VW takes it


def test_the_rest_references_policy_example_drops_io_and_keeps_the_rest() -> None:
    text = "--cb_explore_adf --epsilon 0.2 --dsjson --cb_type ips -l 0.5 --l1 1E-07 --power_t 0.5"
    cfg = parse_learning_settings(text)
    assert (cfg.cb_type, cfg.learning_rate, cfg.power_t) == ("ips", 0.5, 0.5)
    assert cfg.extra_args == ["--l1", "1E-07"]
    assert learning_settings(cfg) == (
        "--cb_explore_adf --epsilon 0.2 --cb_type ips -l 0.5 --power_t 0.5 --l1 1E-07"
    )
    make_policy(cfg)


@pytest.mark.parametrize(
    "explorer",
    [
        {"type": "epsilon", "epsilon": 0.1},
        {"type": "softmax", "lambda": 5.0},
        {"type": "bag", "bags": 4, "epsilon": 0.05, "greedify": True},
        {"type": "cover", "policies": 3, "psi": 0.5, "nounif": True},
        {"type": "squarecb", "gamma_scale": 20.0, "gamma_exponent": 0.3},
        {"type": "regcb", "optimistic": True, "mellowness": 0.2},
        {"type": "rnd", "networks": 2, "alpha": 0.2, "invlambda": 0.5},
    ],
)
def test_learning_settings_round_trip(explorer: dict) -> None:
    cfg = VWPolicyConfig.model_validate(
        {
            "explorer": explorer,
            "cb_type": "dr",
            "interactions": ["ua", "uat"],
            "learning_rate": 0.1,
            "l2": 1e-6,
            "bits": 20,
        }
    )
    assert parse_learning_settings(learning_settings(cfg)) == cfg


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("--cb_explore_adf --epsilon 2", "epsilon"),
        ("--cb_explore_adf --epsilon", "needs a value"),
        ("--cb_explore_adf stray", "unexpected argument"),
        ("--cb_explore_adf --softmax --bag 3", "more than one explorer"),
        ("--cb_explore_adf --cb_type sm", "cb_type"),
        ("--cb_explore_adf --epsilon x", "--epsilon"),
        ("--cb_explore_adf '", "cannot split"),
    ],
)
def test_bad_learning_settings_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(LearningSettingsError, match=says):
        parse_learning_settings(text)


def test_service_configuration_maps_onto_a_patch_of_the_app() -> None:
    default = AppConfig(name="food")  # SquareCB: no fixed explore share to report or keep
    assert service_configuration(default)["explorationPercentage"] == 0.0
    assert patched_config(default, config_patch(default, service_configuration(default))) == default
    app = AppConfig(name="food", policy={"kind": "vw", "explorer": {"type": "epsilon"}})
    got = service_configuration(app)
    assert got["rewardWaitTime"] == "PT1M" and got["rewardAggregation"] == "earliest"
    assert (
        got["learningMode"] == "Online"
        and got["explorationPercentage"] == app.policy.explorer.epsilon
    )  # type: ignore[union-attr]
    body = {
        "rewardWaitTime": "PT10M",
        "defaultReward": -0.5,
        "rewardAggregation": "sum",
        "explorationPercentage": 0.3,
        "learningMode": "Apprentice",
        "logRetentionDays": 7,  # reported, not applied
    }
    patched = patched_config(app, config_patch(app, body))
    assert patched.reward.wait_seconds == 600 and patched.reward.default == -0.5
    assert patched.reward.aggregation == "sum" and patched.mode == "apprentice"
    assert patched.policy.explorer.epsilon == 0.3  # type: ignore[union-attr]
    assert service_configuration(patched)["explorationPercentage"] == 0.3
    # what GET reported, sent back unchanged, changes nothing
    assert config_patch(patched, service_configuration(patched)) == {
        "reward": {"wait_seconds": 600.0, "default": -0.5, "aggregation": "sum"},
        "mode": "apprentice",
    }
    slots = AppConfig(name="layout", slots=[SlotConfig(name="a"), SlotConfig(name="b")])
    both = patched_config(slots, config_patch(slots, {"explorationPercentage": 0.4}))
    assert [s.policy.explorer.epsilon for s in both.slots or []] == [0.4, 0.4]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"rewardWaitTime": "10 minutes"}, "ISO 8601"),
        ({"rewardAggregation": "median"}, "rewardAggregation"),
        ({"learningMode": "Sometimes"}, "learningMode"),
        ({"explorationPercentage": 1.5}, "between 0 and 1"),
        ({"defaultReward": "none"}, "defaultReward"),
    ],
)
def test_bad_service_configuration_says_what_is_wrong(body: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        config_patch(AppConfig(name="food"), body)


def test_durations() -> None:
    assert parse_duration("P1DT2H3M4.5S") == 93784.5
    with pytest.raises(ValueError):
        parse_duration("PT")


def test_feature_lists_become_namespaces() -> None:
    got = namespaced(
        [
            {"timeOfDay": "Morning", "_private": 1, "gone": None},
            {"user": {"tier": "gold", "geo": {"lat": 47.6}, "tags": ["a", "b"], "_x": 1}},
            {"user": {"visits": 3}},
        ]
    )
    assert got == {
        "default": {"timeOfDay": "Morning"},
        "user": {"tier": "gold", "geo.lat": 47.6, "tags.0": "a", "tags.1": "b", "visits": 3},
    }
    assert namespaced([{"user": {"a": 1}}, {"user": {"b": 2}}], flat=True) == {
        "user": {"a": 1, "b": 2}
    }
    with pytest.raises(ValueError, match="JSON objects"):
        namespaced([1])
