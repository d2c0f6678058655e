"""Every reward case has a defined, counted outcome; nothing is silently dropped."""

from __future__ import annotations

import math
import time

import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import DecisionRequest, Reward
from banditrec.eventlog import EventLog, EventLogSettings, RewardOutcome, UnknownAppError
from tests.plugins.redis_server import make_requests

LATER = 10_000.0  # seconds: join as if the wait were long over


def setup_app(log: EventLog, app: str, slots: list[str] | None = None, **reward) -> DecisionEngine:
    config = AppConfig(
        name=app,
        reward=RewardConfig(**{"wait_seconds": 60.0, **reward}),
        slots=[{"name": s} for s in slots] if slots else None,
    )
    log.configs.put(config)
    return DecisionEngine(config)


def serve(log: EventLog, engine: DecisionEngine, request: DecisionRequest) -> list[dict]:
    _, records = engine.decide_logged(request)
    assert log.decisions.write(engine.config.name, records) == [None] * len(records)
    return records


def joined(log: EventLog, app: str) -> dict[str, dict]:
    log.join.join_due(app, now=time.time() + LATER)
    return {rec["EventId"]: rec for _, rec in log.joined.read(app)}


def test_reward_is_joined_as_cost(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name)
    req = make_requests(1)[0]
    serve(event_log, engine, req)
    assert event_log.rewards.add_reward(app_name, req.event_id, 0.75) is RewardOutcome.ACCEPTED
    assert event_log.join.join_due(app_name) == 0, "joined before its wait was over"
    rec = joined(event_log, app_name)[req.event_id]
    assert rec["_label_cost"] == 0.25  # cost = (1 − reward) / (1 − 0): reward range [0, 1]
    assert rec["_banditrec"]["reward"] == 0.75
    assert rec["_banditrec"]["n_rewards"] == 1
    assert engine.learn(rec) is True
    stats = event_log.joined.stats(app_name)
    assert (stats["decisions"], stats["rewards"], stats["joined"], stats["pending_events"]) == (
        1,
        1,
        1,
        0,
    )


def test_no_reward_joins_the_default(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name, default=-0.5)
    req = make_requests(1)[0]
    serve(event_log, engine, req)
    rec = joined(event_log, app_name)[req.event_id]
    assert rec["_label_cost"] == 1.5
    assert rec["_banditrec"]["reward"] == -0.5
    assert rec["_banditrec"]["n_rewards"] == 0
    assert event_log.joined.stats(app_name)["joined_default"] == 1


@pytest.mark.parametrize(
    ("aggregation", "values", "expected", "outcomes"),
    [
        ("first", [1.0, 5.0], 1.0, ["accepted", "duplicate"]),
        ("sum", [1.5, 2.0, -0.25], 3.25, ["accepted"] * 3),
        ("max", [1.0, 3.0, 2.0], 3.0, ["accepted"] * 3),
    ],
)
def test_aggregation(
    event_log: EventLog,
    app_name: str,
    aggregation: str,
    values: list[float],
    expected: float,
    outcomes: list[str],
) -> None:
    engine = setup_app(event_log, app_name, aggregation=aggregation)
    req = make_requests(1)[0]
    serve(event_log, engine, req)
    got = [event_log.rewards.add_reward(app_name, req.event_id, v) for v in values]
    assert got == outcomes
    rec = joined(event_log, app_name)[req.event_id]
    assert rec["_banditrec"]["reward"] == pytest.approx(expected)
    stats = event_log.joined.stats(app_name)
    assert stats.get("duplicates", 0) == outcomes.count("duplicate")
    if "duplicate" in outcomes:
        kept = event_log.rewards.orphans(app_name)
        assert [(o["why"], float(o["v"])) for o in kept] == [("duplicate", 5.0)]


def test_reward_before_its_decision_is_attached(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name)
    req = make_requests(1)[0]
    assert event_log.rewards.add_reward(app_name, req.event_id, 2.0) is RewardOutcome.EARLY
    serve(event_log, engine, req)
    rec = joined(event_log, app_name)[req.event_id]
    assert rec["_banditrec"]["reward"] == 2.0
    stats = event_log.joined.stats(app_name)
    assert (stats["early"], stats["early_attached"], stats["rewards"]) == (1, 1, 1)
    assert stats["early_events_held"] == 0


def test_early_reward_whose_decision_never_comes_becomes_an_orphan(
    redis_client, app_name: str, tmp_path
) -> None:
    log = EventLog(redis_client, settings=EventLogSettings(early_grace_s=5.0))
    engine = setup_app(log, app_name)
    assert log.rewards.add_reward(app_name, "never-logged", 1.0) is RewardOutcome.EARLY
    log.join.join_due(app_name, now=time.time() + 6.0)  # the joiner sweeps expired early rewards
    stats = log.joined.stats(app_name)
    assert (stats["orphans"], stats["early_events_held"]) == (1, 0)
    assert log.rewards.orphans(app_name)[0]["why"] == "unknown_event"
    # The decision arriving after the grace period no longer picks it up.
    serve(log, engine, DecisionRequest(event_id="never-logged", actions=[{"id": "x"}, {"id": "y"}]))
    assert joined(log, app_name)["never-logged"]["_banditrec"]["n_rewards"] == 0


def test_without_grace_an_unknown_event_is_an_orphan_at_once(redis_client, app_name: str) -> None:
    log = EventLog(redis_client, settings=EventLogSettings(early_grace_s=0.0))
    setup_app(log, app_name)
    assert log.rewards.add_reward(app_name, "nope", 1.0) is RewardOutcome.UNKNOWN_EVENT
    assert log.joined.stats(app_name)["orphans"] == 1
    assert log.rewards.orphans(app_name)[0] == {
        "e": "nope",
        "s": "",
        "v": "1.0",
        "why": "unknown_event",
        "t": log.rewards.orphans(app_name)[0]["t"],
    }


def test_reward_after_the_join_is_kept_aside(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name)
    req = make_requests(1)[0]
    serve(event_log, engine, req)
    joined(event_log, app_name)
    assert event_log.rewards.add_reward(app_name, req.event_id, 1.0) is RewardOutcome.ALREADY_JOINED
    assert event_log.joined.stats(app_name)["late"] == 1
    assert event_log.rewards.orphans(app_name)[0]["why"] == "already_joined"
    # The joined record is still known for a while: a repeated decision gets the original.
    again = engine.decide_logged(req)[1]
    assert event_log.decisions.write(app_name, again)[0]["EventId"] == req.event_id


def test_reward_for_an_unknown_app_is_counted(event_log: EventLog, app_name: str) -> None:
    before = event_log.rewards.unknown_app_rewards().get(app_name, 0)
    assert event_log.rewards.add_reward(app_name, "e1", 1.0) is RewardOutcome.UNKNOWN_APP
    assert event_log.rewards.add_rewards(app_name, [Reward(event_id="e2", value=0.0)]) == [
        "unknown_app"
    ]
    assert event_log.rewards.unknown_app_rewards()[app_name] == before + 2
    engine = DecisionEngine(AppConfig(name=app_name))
    with pytest.raises(UnknownAppError, match=r"configs\.put"):
        event_log.decisions.write(app_name, engine.decide_logged(make_requests(1)[0])[1])


def test_multi_slot_rewards(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name, slots=["top", "side"], aggregation="sum")
    a, b = make_requests(2, slots=["top", "side"])
    serve(event_log, engine, a)
    serve(event_log, engine, b)
    assert (
        event_log.rewards.add_reward(app_name, a.event_id, 1.0, slot="top")
        is RewardOutcome.ACCEPTED
    )
    assert (
        event_log.rewards.add_reward(app_name, b.event_id, 2.0) is RewardOutcome.ACCEPTED
    )  # every slot
    assert (
        event_log.rewards.add_reward(app_name, b.event_id, 1.0, slot="side")
        is RewardOutcome.ACCEPTED
    )
    assert (
        event_log.rewards.add_reward(app_name, a.event_id, 1.0, slot="nope")
        is RewardOutcome.UNKNOWN_SLOT
    )
    got = joined(event_log, app_name)
    rewards = {eid: r["_banditrec"]["reward"] for eid, r in got.items()}
    assert rewards == {
        f"{a.event_id}/top": 1.0,
        f"{a.event_id}/side": 0.0,
        f"{b.event_id}/top": 2.0,
        f"{b.event_id}/side": 3.0,
    }
    assert {r["_banditrec"]["slot"] for r in got.values()} == {"top", "side"}
    assert event_log.joined.stats(app_name)["orphans"] == 1


def test_join_on_first_joins_without_waiting(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name, slots=["top", "side"], join_on_first=True)
    req = make_requests(1, slots=["top", "side"])[0]
    serve(event_log, engine, req)
    assert event_log.rewards.add_reward(app_name, req.event_id, 1.0, slot="top") == "accepted"
    assert event_log.join.join_due(app_name) == 1  # now, not after 60 s: only the rewarded slot
    assert [r["EventId"] for _, r in event_log.joined.read(app_name)] == [f"{req.event_id}/top"]
    assert event_log.rewards.add_reward(app_name, req.event_id, 1.0, slot="top") == "already_joined"
    assert event_log.rewards.add_reward(app_name, req.event_id, 0.5, slot="side") == "accepted"
    assert event_log.join.join_due(app_name) == 1
    assert event_log.joined.stats(app_name)["pending_events"] == 0
    assert event_log.rewards.add_reward(app_name, req.event_id, 0.5) == "already_joined"


def test_deferred_events_count_only_once_activated(event_log: EventLog, app_name: str) -> None:
    engine = setup_app(event_log, app_name, wait_seconds=30.0)
    inactive, active = (
        DecisionRequest(actions=[{"id": "x"}, {"id": "y"}], deferred=True) for _ in range(2)
    )
    serve(event_log, engine, inactive)
    serve(event_log, engine, active)
    event_log.rewards.add_reward(app_name, inactive.event_id, 1.0)
    event_log.rewards.add_reward(app_name, active.event_id, 1.0)
    time.sleep(0.2)
    activated_at = time.time()
    assert event_log.rewards.activate(app_name, active.event_id) is True
    assert event_log.rewards.activate(app_name, active.event_id) is True  # idempotent
    assert event_log.rewards.activate(app_name, "no-such-event") is False
    # Activation restarts the wait: at the original deadline only the inactive one is due.
    assert event_log.join.join_due(app_name, now=activated_at + 29.9) == 1
    assert event_log.join.join_due(app_name, now=activated_at + 31.0) == 1
    got = {r["EventId"]: r for _, r in event_log.joined.read(app_name)}
    assert got[inactive.event_id]["_skipLearn"] is True
    assert got[active.event_id]["_skipLearn"] is False
    assert engine.learn(got[inactive.event_id]) is False
    assert engine.learn(got[active.event_id]) is True
    assert event_log.rewards.activate(app_name, inactive.event_id) is False
    stats = event_log.joined.stats(app_name)
    assert (stats["activations"], stats["late_activations"], stats["unknown_activations"]) == (
        1,
        1,
        1,
    )


def test_a_replayed_reward_counts_once(event_log: EventLog, app_name: str) -> None:
    """The spool replays a reward whose first attempt may have reached Redis: its token
    makes the second application a no-op."""
    engine = setup_app(event_log, app_name, aggregation="sum")
    req = make_requests(1)[0]
    serve(event_log, engine, req)
    entry = {
        "k": "r",
        "app": app_name,
        "event_id": req.event_id,
        "slot": None,
        "value": 1.0,
        "token": "tok1",
    }
    for _ in range(3):
        event_log.outage._replay_entries([entry], repr(time.time()))
    assert joined(event_log, app_name)[req.event_id]["_banditrec"]["reward"] == 1.0
    assert event_log.joined.stats(app_name)["rewards"] == 1


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_rewards_are_refused(event_log: EventLog, app_name: str, value: float) -> None:
    setup_app(event_log, app_name)
    with pytest.raises(ValueError, match="finite"):
        event_log.rewards.add_reward(app_name, "e1", value)


def test_bad_event_id_is_refused(event_log: EventLog, app_name: str) -> None:
    setup_app(event_log, app_name)
    with pytest.raises(ValueError, match="event_id"):
        event_log.rewards.add_reward(app_name, "has space", 1.0)
