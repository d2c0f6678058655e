"""Requests are validated with messages that name the field and say what to fix."""

import math

import pytest
from pydantic import ValidationError

from banditrec import DecisionRequest, Limits, LoggedEvent, Reward
from banditrec.config import AppConfig


def actions(n=3, features=None):
    return [{"id": f"a{i}", "features": features or {"topic": {"t": i}}} for i in range(n)]


def error_of(data, **ctx) -> str:
    with pytest.raises(ValidationError) as info:
        DecisionRequest.model_validate(data, context=ctx or None)
    return str(info.value)


def test_event_id_is_generated_when_missing():
    a, b = DecisionRequest(actions=actions()), DecisionRequest(actions=actions())
    assert a.event_id and a.event_id != b.event_id


def test_valid_request_round_trips():
    req = DecisionRequest.model_validate(
        {
            "event_id": "e1",
            "context": {"user": {"country": "IN", "visits": 3, "new": True}},
            "actions": actions(),
        }
    )
    assert req.context["user"]["visits"] == 3 and len(req.actions) == 3


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"actions": []}, "actions\n  List should have at least 1 item"),
        ({}, "send either 'actions'"),
        (
            {"actions": actions(), "slots": [{"id": "s", "actions": actions()}]},
            "send either 'actions'",
        ),
        ({"actions": [{"id": "a"}, {"id": "a"}]}, "actions[1].id: duplicate action id 'a'"),
        ({"actions": [{"id": ""}]}, "actions.0.id"),
        ({"actions": [{"id": 5}]}, "actions.0.id\n  Input should be a valid string"),
        ({"actions": actions(), "context": {"user": {"age": [1]}}}, "context.user.age"),
        (
            {"actions": actions(), "context": {"user": {"age": math.nan}}},
            "context.user.age: value nan is not finite",
        ),
        (
            {"actions": actions(features={"t": {"x": math.inf}})},
            "actions[0].features.t.x: value inf is not finite",
        ),
        (
            {"actions": actions(), "context": {"_user": {"a": 1}}},
            "namespace '_user' must be non-empty",
        ),
        (
            {"actions": actions(), "context": {"user": {"_a": 1}}},
            "feature name '_a' must be non-empty",
        ),
        (
            {"actions": actions(), "event_id": "has space"},
            "event_id\n  String should match pattern",
        ),
        ({"actions": actions(), "colour": "red"}, "colour\n  Extra inputs are not permitted"),
        (
            {"actions": actions(), "exploration": {"epsilon": 2}},
            "exploration.epsilon\n  Input should be less than or equal to 1",
        ),
        (
            {"slots": [{"id": "s", "actions": actions()}, {"id": "s", "actions": actions()}]},
            "slot ids must be unique",
        ),
    ],
)
def test_invalid_requests_say_what_to_fix(data, expected):
    assert expected in error_of(data)


def test_limits_are_configurable_and_enforced():
    limits = Limits(max_actions=2, max_features=5, max_id_length=4)
    assert "3 actions; the limit is 2" in error_of({"actions": actions(3)}, limits=limits)
    assert "action id is 5 characters long; the limit is 4" in error_of(
        {"actions": [{"id": "abcde"}]}, limits=limits
    )
    many = {"user": {f"f{i}": i for i in range(6)}}
    assert "6 features in the request; the limit is 5" in error_of(
        {"actions": [{"id": "a"}], "context": many}, limits=limits
    )
    # the defaults are generous
    DecisionRequest.model_validate({"actions": actions(3), "context": many})


def test_reward_must_be_finite():
    with pytest.raises(ValidationError, match="reward nan is not finite"):
        Reward(event_id="e1", value=math.nan)


def test_app_config_errors_are_precise():
    with pytest.raises(ValidationError, match=r"policy\.vw\.explorer\.epsilon\.epsilon"):
        AppConfig.model_validate(
            {"policy": {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 3}}}
        )
    with pytest.raises(ValidationError, match="controls files or I/O"):
        AppConfig.model_validate({"policy": {"kind": "vw", "extra_args": ["-f", "model.vw"]}})
    with pytest.raises(ValidationError, match="Input tag 'nope' found using 'kind'"):
        AppConfig.model_validate({"policy": {"kind": "nope"}})
    with pytest.raises(ValidationError, match="slot names must be unique"):
        AppConfig.model_validate({"slots": [{"name": "a"}, {"name": "a"}]})


def test_logged_event_checks_dsjson_consistency():
    good = {
        "_label_cost": -1.0,
        "_label_probability": 0.5,
        "_label_Action": 2,
        "_labelIndex": 1,
        "a": [2, 1],
        "p": [0.5, 0.5],
        "c": {"_multi": [{}, {}]},
        "EventId": "e",
        "Timestamp": "2026-01-01T00:00:00Z",
        "_banditrec": {"app": "x", "event_id": "e", "action_ids": ["a", "b"]},
    }
    event = LoggedEvent.model_validate(good)
    assert event.reward == 1.0 and event.pmf() == [0.5, 0.5]
    with pytest.raises(ValidationError, match="come first in 'a'"):
        LoggedEvent.model_validate({**good, "a": [1, 2]})
    with pytest.raises(ValidationError, match="one entry per action"):
        LoggedEvent.model_validate({**good, "p": [1.0]})
