"""Arms of kind `policy` (an alternative config with a model of its own, learned from every
arm's traffic) and every arm's off-policy estimate on all arms' traffic, beside its online
value on its own slice. The service's decision path, a real Redis, real VW, the learner,
the reporter and the supervisor as the service runs them."""

from __future__ import annotations

import asyncio
import hashlib
import time

import orjson
import pytest
from pydantic import ValidationError

from banditrec.config import AppConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.record import META_KEY
from banditrec.decision.schema import Reward
from banditrec.eventlog import AppKeys, EventLog
from banditrec.eventlog.records import joined_record
from banditrec.experiments.arms import ARM_MODEL_PREFIX
from banditrec.experiments.guard import Supervisor
from banditrec.learner import Learner
from banditrec.policies.check import config_problems
from banditrec.reporting import Reporter
from banditrec.serving.service import DecisionService
from banditrec.serving.settings import ServiceSettings

ACTIONS = [{"id": "meh"}, {"id": "good"}, {"id": "bad"}]  # "meh" is the default action
PAYS = {"good": 6, "meh": 3, "bad": 1}  # in ten


def _reward(action: str, event_id: str) -> float:
    x = hashlib.blake2b(event_id.encode(), digest_size=2).digest()[0] % 10
    return float(x < PAYS[action])


def _app(name: str, arms: list[dict], policy: dict | None = None) -> AppConfig:
    return AppConfig.model_validate(
        {
            "name": name,
            "policy": policy or {"kind": "fixed", "action_id": "good"},
            "experiment": {"name": "exp", "arms": arms, "evaluation": {"interval_seconds": 1}},
        }
    )


def _serve_and_join(log: EventLog, app: str, n: int) -> list:
    service = DecisionService(log, ServiceSettings())

    async def run() -> list:
        return [
            await service.decide(app, orjson.dumps({"unit_id": f"u{i}", "actions": ACTIONS}))
            for i in range(n)
        ]

    try:
        decisions = asyncio.run(run())
    finally:
        service.close()
    log.rewards.add_rewards(
        app,
        [Reward(event_id=d.event_id, value=_reward(d.action_id, d.event_id)) for d in decisions],
    )
    while log.join.join_due(app, now=time.time() + 3600):
        pass
    return decisions


def test_a_policy_arm_serves_its_own_config_and_decisions_name_their_arm(
    event_log: EventLog, app_name: str
) -> None:
    arms = [
        {"name": "learned", "kind": "learned"},
        {"name": "candidate", "kind": "policy", "policy": {"kind": "fixed", "action_id": "bad"}},
    ]
    event_log.configs.put(_app(app_name, arms))
    decisions = _serve_and_join(event_log, app_name, 200)
    for d in decisions:
        assert d.arm in ("learned", "candidate") and d.arm_probability == 0.5
        assert d.action_id == {"learned": "good", "candidate": "bad"}[d.arm] or d.probability < 0.01
        (record,) = event_log.decisions.records(app_name, d.event_id)
        assert record[META_KEY]["arm"] == d.arm
    assert {d.arm for d in decisions} == {"learned", "candidate"}


def test_a_policy_arm_is_validated_like_the_apps_policy() -> None:
    with pytest.raises(ValidationError, match="needs a `policy` block"):
        _app("a", [{"name": "l", "kind": "learned"}, {"name": "c", "kind": "policy"}])
    with pytest.raises(ValidationError, match="only an arm of kind 'policy'"):
        _app(
            "a",
            [{"name": "l", "kind": "learned", "policy": {"kind": "uniform"}}] * 1
            + [{"name": "d", "kind": "default"}],
        )
    bad_vw = {"kind": "vw", "extra_args": ["--no_such_option"]}
    config = _app(
        "a", [{"name": "l", "kind": "learned"}, {"name": "c", "kind": "policy", "policy": bad_vw}]
    )
    ((where, message),) = config_problems(config)
    assert where == "experiment.arms[c].policy" and "no_such_option" in message


def test_a_policy_arms_model_learns_from_every_arms_traffic_and_is_published(
    event_log: EventLog, app_name: str
) -> None:
    candidate = {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.3}}
    arms = [
        {"name": "learned", "kind": "learned", "weight": 3},
        {"name": "candidate", "kind": "policy", "weight": 1, "policy": candidate},
    ]
    config = _app(app_name, arms, policy={"kind": "vw"})
    event_log.configs.put(config)
    decisions = _serve_and_join(event_log, app_name, 300)
    assert sum(d.arm == "candidate" for d in decisions) < 120  # a quarter of the units
    learner = Learner(event_log, app_name)
    assert learner.step() == 300
    published = event_log.models.latest(app_name).models
    key = ARM_MODEL_PREFIX + "candidate"
    assert set(published) == {"", key}
    fresh = DecisionEngine(config).model_bytes()[key]
    assert published[key] != fresh  # it learned
    # learned from all 300 joined decisions, every arm's: as an engine taught each of them
    taught = DecisionEngine(config)
    for _, fields in event_log.client.xrange(AppKeys(app_name).joined):
        taught.learn(joined_record(fields))
    assert taught.model_bytes()[key] == published[key]
    restarted = Learner(event_log, app_name)  # a learner that starts again starts from it
    restarted.load()
    assert restarted.engine.arm_policies["candidate"].to_bytes() == published[key]
    serving = DecisionEngine(config)  # and the serving side swaps it in with the app's model
    serving.load_models(published, 1)
    assert serving.arm_policies["candidate"].to_bytes() == published[key]


def test_each_arm_off_policy_on_all_traffic_is_tighter_than_its_own_slice(
    event_log: EventLog, app_name: str
) -> None:
    arms = [
        {"name": "learned", "kind": "learned"},  # the app's policy: always "good"
        {"name": "candidate", "kind": "policy", "policy": {"kind": "fixed", "action_id": "good"}},
        {"name": "control", "kind": "default"},  # "meh"
    ]
    event_log.configs.put(_app(app_name, arms))
    _serve_and_join(event_log, app_name, 900)
    Reporter(event_log, app_name).catch_up()
    state = Supervisor(event_log).check(app_name)
    estimates = state["estimates"]
    assert estimates["events"] == 900
    width = {}
    for name, e in estimates["arms"].items():
        on, off = e["online"], e["off_policy"]
        assert on["n"] == e["decisions"] > 200 and off["n"] == 900
        width[name] = (on["upper"] - on["lower"], off["upper"] - off["lower"])
        assert abs(off["mean"] - {"control": 0.3}.get(name, 0.6)) < 0.1
    # the learned arm and the candidate choose alike: each is estimated on both slices
    for name in ("learned", "candidate"):
        online, off_policy = width[name]
        assert off_policy < 0.85 * online, (name, width[name])
