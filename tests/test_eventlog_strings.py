"""User strings are data in the Lua scripts and keys: slot names, event ids, app names and
action ids of every character class reach Redis and come back unchanged, counted."""

from __future__ import annotations

import time

import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import DecisionRequest, Reward
from banditrec.eventlog import EventLog, EventLogSettings, RewardOutcome
from banditrec.eventlog.keys import check_app_name
from banditrec.eventlog.records import joined_header

LATER = 10_000.0

# Lua pattern magic, the field separators the scripts once used, unicode, control characters
# (NUL, newline) and length: one string per class, and all of them together.
STRINGS = [
    "^$()%.[]*+-?",
    "%",
    "a|b",
    "|",
    "||||",
    "a,b",
    ",",
    "用户",
    "😀",
    "a\x00b",
    "\x00",
    "line\nbreak",
    "tab\tand\rreturn",
    "x" * 10_000,
    "",
]
STRINGS.append("".join(STRINGS[:-2]))


def _app(log: EventLog, app: str, slots: list[str] | None = None) -> DecisionEngine:
    config = AppConfig(
        name=app,
        reward=RewardConfig(wait_seconds=60.0),
        slots=[{"name": s} for s in slots] if slots else None,
    )
    log.configs.put(config)
    return DecisionEngine(config)


@pytest.mark.parametrize("slot", STRINGS, ids=range(len(STRINGS)))
def test_an_early_reward_with_any_slot_is_held_then_settled(
    event_log: EventLog, app_name: str, slot: str
) -> None:
    engine = _app(event_log, app_name)
    req = DecisionRequest(event_id="ev-1", actions=[{"id": "a"}, {"id": "b"}])
    reward = Reward(event_id=req.event_id, value=1.0, slot=slot)
    assert event_log.rewards.add_rewards(app_name, [reward]) == [RewardOutcome.EARLY]
    # The decision arrives: the held reward is settled (a single-slot event has no such slot)
    # and the decision is stored whole, once.
    _, records = engine.decide_logged(req)
    assert event_log.decisions.write(app_name, records) == [None]
    again = event_log.decisions.write(app_name, engine.decide_logged(req)[1])
    assert again[0]["EventId"] == req.event_id  # answered from the stored record
    stats = event_log.joined.stats(app_name)
    assert (stats["early_attached"], stats["early_events_held"]) == (1, 0)
    outcome = "accepted" if slot == "" else "unknown_slot"
    if outcome == "unknown_slot":
        (orphan,) = event_log.rewards.orphans(app_name)
        assert (orphan["s"], orphan["why"]) == (slot, "unknown_slot")
    event_log.join.join_due(app_name, now=time.time() + LATER)
    (rec,) = [r for _, r in event_log.joined.read(app_name)]
    assert rec["_banditrec"]["n_rewards"] == (1 if slot == "" else 0)


@pytest.mark.parametrize("slot", STRINGS, ids=range(len(STRINGS)))
def test_held_rewards_with_any_slot_become_orphans_when_no_decision_comes(
    redis_client, app_name: str, slot: str
) -> None:
    log = EventLog(redis_client, settings=EventLogSettings(early_grace_s=5.0))
    _app(log, app_name)
    rewards = [Reward(event_id="never", value=v, slot=slot) for v in (1.0, 2.0)]
    assert log.rewards.add_rewards(app_name, rewards) == [RewardOutcome.EARLY] * 2
    log.join.join_due(app_name, now=time.time() + 6.0)
    stats = log.joined.stats(app_name)
    assert (stats["orphans"], stats["early_events_held"]) == (2, 0)
    assert sorted((o["e"], o["s"], o["v"]) for o in log.rewards.orphans(app_name)) == [
        ("never", slot, "1.0"),
        ("never", slot, "2.0"),
    ]


@pytest.mark.parametrize("slot", STRINGS, ids=range(len(STRINGS)))
def test_a_reward_with_any_slot_for_a_stored_event_has_an_outcome(
    event_log: EventLog, app_name: str, slot: str
) -> None:
    engine = _app(event_log, app_name, slots=["top", "side"])
    req = DecisionRequest(
        event_id="ev-2",
        slots=[{"id": s, "actions": [{"id": "a"}, {"id": "b"}]} for s in ("top", "side")],
    )
    event_log.decisions.write(app_name, engine.decide_logged(req)[1])
    got = event_log.rewards.add_rewards(
        app_name, [Reward(event_id=req.event_id, value=1.0, slot=slot)]
    )
    assert got == [RewardOutcome.UNKNOWN_SLOT]
    assert event_log.rewards.add_reward(app_name, req.event_id, 0.5, slot="top") == "accepted"
    event_log.join.join_due(app_name, now=time.time() + LATER)
    rewards = {r["EventId"]: r["_banditrec"]["reward"] for _, r in event_log.joined.read(app_name)}
    assert rewards == {"ev-2/top": 0.5, "ev-2/side": 0.0}


ACTION_IDS = [s for s in STRINGS if 0 < len(s) <= 256]


@pytest.mark.parametrize("action_id", ACTION_IDS, ids=range(len(ACTION_IDS)))
def test_action_ids_of_any_class_are_logged_and_joined_unchanged(
    event_log: EventLog, app_name: str, action_id: str
) -> None:
    engine = DecisionEngine(
        AppConfig(name=app_name, policy={"kind": "uniform"}, reward={"wait_seconds": 60.0})
    )
    event_log.configs.put(engine.config)
    req = DecisionRequest(event_id="ev-3", actions=[{"id": action_id}, {"id": "other"}])
    if "\x00" in action_id:  # refused whatever the policy: VW would cut it (decision/features.py)
        with pytest.raises(ValueError, match="NUL"):
            engine.decide_logged(req)
        return
    assert event_log.decisions.write(app_name, engine.decide_logged(req)[1]) == [None]
    assert event_log.rewards.add_reward(app_name, req.event_id, 1.0) == "accepted"
    event_log.join.join_due(app_name, now=time.time() + LATER)
    (rec,) = [r for _, r in event_log.joined.read(app_name)]
    assert sorted(rec["_banditrec"]["action_ids"]) == sorted([action_id, "other"])


@pytest.mark.parametrize(
    "event_id", [s for s in STRINGS if s] + ["e}x{", "*", "e 1", "e\n"], ids=lambda s: repr(s)[:20]
)
def test_event_ids_and_app_names_outside_their_alphabet_are_refused(event_id: str) -> None:
    with pytest.raises(ValueError):
        Reward(event_id=event_id, value=1.0)
    with pytest.raises(ValueError):
        DecisionRequest(event_id=event_id, actions=[{"id": "a"}])
    with pytest.raises(ValueError):
        check_app_name(event_id)
    with pytest.raises(ValueError):
        check_app_name("app\n")  # a trailing newline is not the end of the name


def test_the_joined_header_keeps_a_slot_with_separators() -> None:
    head = joined_header({b"h": b"ev-1|a|b||c|1.5|2|1|1700000000.5"})
    assert (head.event_id, head.slot, head.reward, head.n_rewards) == (b"ev-1", b"a|b||c", 1.5, 2)
