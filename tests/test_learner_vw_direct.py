"""The learner's direct VW path (VW parsing the logged DSJson bytes) trains exactly the model
`engine.learn` trains from the same joined records."""

from __future__ import annotations

import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import DecisionRequest, Reward
from banditrec.eventlog import EventLog
from banditrec.learner import Learner
from tests.plugins.redis_server import make_requests

KEEP_COUNTERS = ["--preserve_performance_counters"]


def vw(**policy) -> dict:
    return {"kind": "vw", "extra_args": KEEP_COUNTERS, **policy}


@pytest.mark.parametrize(
    ("policy", "slots", "empty_context"),
    [
        (vw(), None, False),
        (vw(explorer={"type": "squarecb"}, interactions=["ui"]), None, False),
        (vw(explorer={"type": "softmax", "lambda": 5.0}, cb_type="ips"), None, True),
        (vw(explorer={"type": "bag", "bags": 3}), ["top", "side"], False),
    ],
)
def test_direct_path_trains_the_engine_model(
    event_log: EventLog, app_name: str, policy: dict, slots: list[str] | None, empty_context: bool
) -> None:
    config = AppConfig(
        name=app_name,
        policy=policy,
        slots=[{"name": s, "policy": policy} for s in slots] if slots else None,
        reward=RewardConfig(wait_seconds=0.0, default=-0.25),
    )
    event_log.configs.put(config)
    engine = DecisionEngine(config)
    requests = make_requests(300, slots=slots)
    if empty_context:
        requests = [DecisionRequest(actions=r.actions) for r in requests]
    decided = [engine.decide_logged(r) for r in requests]
    event_log.decisions.write(app_name, [rec for _, recs in decided for rec in recs])
    event_log.rewards.add_rewards(
        app_name, [Reward(event_id=d.event_id, value=0.5) for d, _ in decided[::3]]
    )
    while event_log.join.join_due(app_name):
        pass

    learner = Learner(event_log, app_name)
    while learner.step():
        pass
    reference = DecisionEngine(config)
    for _, record in event_log.joined.read(app_name, count=10_000):
        assert reference.learn(record)
    assert learner.engine is not None
    assert learner.engine.model_bytes() == reference.model_bytes()
    assert event_log.models.latest(app_name).models == reference.model_bytes()
    n = 300 * (len(slots) if slots else 1)
    assert event_log.joined.stats(app_name)["learned"] == n


def test_deferred_and_logging_mode_take_the_engine_path(event_log: EventLog, app_name: str) -> None:
    config = AppConfig(name=app_name, policy=vw(), reward=RewardConfig(wait_seconds=0.0))
    event_log.configs.put(config)
    engine = DecisionEngine(config)
    deferred = [
        DecisionRequest(actions=r.actions, context=r.context, deferred=True)
        for r in make_requests(20)
    ]
    decided = [engine.decide_logged(r) for r in deferred]
    event_log.decisions.write(app_name, [rec for _, recs in decided for rec in recs])
    for d, _ in decided[:5]:
        event_log.rewards.activate(app_name, d.event_id)
    event_log.join.join_due(app_name, now=1e12)
    learner = Learner(event_log, app_name)
    learner.step()
    stats = event_log.joined.stats(app_name)
    assert (stats["learned"], stats["skipped"]) == (5, 15)  # only the activated ones count

    event_log.configs.put(config.model_copy(update={"mode": "logging"}))
    decided = [engine.decide_logged(r) for r in make_requests(10, seed=1)]
    event_log.decisions.write(app_name, [rec for _, recs in decided for rec in recs])
    event_log.join.join_due(app_name, now=1e12)
    learner = Learner(event_log, app_name)
    learner.step()
    stats = event_log.joined.stats(app_name)
    assert (stats["learned"], stats["skipped"]) == (5, 25)  # logging mode learns nothing
