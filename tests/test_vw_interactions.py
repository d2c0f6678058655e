"""VW's namespace crosses: the default crosses every context namespace with every action
namespace as they appear; explicit crosses that match nothing are reported, not kept silently."""

from __future__ import annotations

import logging

import orjson
import pytest

from banditrec import AppConfig, DecisionEngine, DecisionRequest
from banditrec.config import RewardConfig
from banditrec.decision.record import set_reward
from banditrec.decision.schema import Reward
from banditrec.eventlog import EventLog
from banditrec.learner import Learner
from banditrec.policies import VWPolicy
from banditrec.policies.interactions import CHECK_EVERY, InteractionCheck
from banditrec.simulate.harness import simulate
from tests.plugins.redis_server import make_requests

from .synthetic import UNIFORM_VALUE, run_online


def engine_for(**policy) -> DecisionEngine:
    return DecisionEngine(AppConfig(name="x", policy={"kind": "vw", **policy}))


def request(i: int, context: dict) -> DecisionRequest:
    actions = [{"id": f"a{j}", "features": {"topic": {f"t{j}": 1}}} for j in range(3)]
    return DecisionRequest(event_id=f"e{i}", context=context, actions=actions)


def learn(engine: DecisionEngine, n: int, context: dict, start: int = 0) -> None:
    for i in range(start, start + n):
        _, (record,) = engine.decide_logged(request(i, context))
        engine.learn(set_reward(record, 1.0))


def crosses(policy: VWPolicy) -> set[tuple[str, str]]:
    """The crosses the VW model carries (read back from its own bytes)."""
    return InteractionCheck(None, policy.to_bytes()).crosses


def test_default_crosses_context_with_action_namespaces_by_full_name() -> None:
    engine = engine_for()
    learn(engine, 3, {"user": {"u": 1}, "url": {"path": "home"}})
    assert crosses(engine.policies[None]) == {
        (c, a) for c in ("user", "url") for a in ("topic", "id")
    }  # no user × url (both context), no collision of user and url on the letter 'u'


def test_a_namespace_appearing_later_is_crossed_and_the_model_carries_it() -> None:
    engine = engine_for()
    learn(engine, 1, {"user": {"u": 1}})
    learn(engine, CHECK_EVERY, {"user": {"u": 1}, "device": {"mobile": 1}}, start=1)
    policy = engine.policies[None]
    assert {("device", "topic"), ("device", "id")} <= crosses(policy)
    # a replica loading the bytes predicts with the same crosses
    replica = VWPolicy.from_bytes(policy.config, policy.to_bytes())
    x = engine.features(request(99, {"user": {"u": 1}, "device": {"mobile": 1}}))[None]
    assert replica.probabilities(x, 0) == policy.probabilities(x, 0)


def test_explicit_empty_interactions_cross_nothing() -> None:
    engine = engine_for(interactions=[])
    learn(engine, 3, {"user": {"u": 1}})
    assert crosses(engine.policies[None]) == set()


def test_the_default_personalizes() -> None:
    """Each user segment has its own best item: without crosses no policy can do better than
    one item for everyone (value ≤ (0.8 + 3 × 0.2) / 4 = 0.35 on this problem)."""
    rewards = run_online(engine_for(), 3000, seed=1)
    assert rewards[-1000:].mean() > 0.6 > UNIFORM_VALUE
    flat = run_online(engine_for(interactions=[]), 3000, seed=1)
    assert flat[-1000:].mean() < 0.4


def test_unmatched_interaction_is_warned_and_counted(
    event_log: EventLog, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = AppConfig(
        name=app_name,
        policy={"kind": "vw", "interactions": ["ui", "zq"]},
        reward=RewardConfig(wait_seconds=0.0),
    )
    event_log.configs.put(config)
    engine = DecisionEngine(config)
    decided = [engine.decide_logged(r) for r in make_requests(40)]
    event_log.decisions.write(app_name, [rec for _, recs in decided for rec in recs])
    event_log.rewards.add_rewards(
        app_name, [Reward(event_id=d.event_id, value=1.0) for d, _ in decided]
    )
    while event_log.join.join_due(app_name):
        pass
    with caplog.at_level(logging.WARNING):
        learner = Learner(event_log, app_name)
        while learner.step():
            pass
    assert event_log.joined.stats(app_name)["unmatched_interaction_events"] == 40
    warned = [r.getMessage() for r in caplog.records if "'zq'" in r.getMessage()]
    assert len(warned) == 1 and "'ui'" not in warned[0]


def test_a_simulation_refuses_interactions_its_env_cannot_match() -> None:
    with pytest.raises(ValueError, match=r"\['zq'\] match no namespace"):
        simulate("banditrec/Iris-v0", {"kind": "vw", "interactions": ["xl", "zq"]}, steps=3)


def test_cost_is_learned_on_the_reward_range() -> None:
    """A reward in [low, high] is learned as (high − reward) / (high − low): the record says so,
    and VW trained on the record's cost is the model the engine trained."""
    engine = engine_for(reward_range=(-1.0, 3.0))
    _, (record,) = engine.decide_logged(request(0, {"user": {"u": 1}}))
    scale = engine.config.cost_scales()[None]
    joined = set_reward(record, 2.0, scale=scale)
    assert joined["_label_cost"] == pytest.approx(0.25)
    assert joined["_banditrec"]["reward"] == 2.0
    reference, direct = engine_for(reward_range=(-1.0, 3.0)), engine_for(reward_range=(-1.0, 3.0))
    assert reference.learn(joined)
    direct.policies[None].learn_dsjson(orjson.dumps(joined))
    assert reference.model_bytes() == direct.model_bytes()
    assert reference.model_bytes() != engine_for().model_bytes()
