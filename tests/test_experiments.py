"""Experiments: units split between arms by a stable hash, the arm and its share logged with
the exact within-arm probability; a sabotaged arm trips the guardrail and its traffic goes
back to the default; a tampered split is flagged as a sample-ratio mismatch. The service's
decision path, a real Redis, the reporter and the supervisor as the service runs them."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict

import httpx
import orjson
import pytest
from pydantic import ValidationError

from banditrec.config import AppConfig
from banditrec.decision.record import META_KEY
from banditrec.decision.schema import Reward
from banditrec.eventlog import EventLog
from banditrec.experiments import ExperimentConfig, assign
from banditrec.experiments.guard import Supervisor
from banditrec.reporting import Reporter
from banditrec.serving.service import DecisionService
from banditrec.serving.settings import ServiceSettings
from tests.plugins.ray_cluster import ServiceUnderTest
from tests.polling import wait_for

ACTIONS = [{"id": "good"}, {"id": "bad"}, {"id": "meh"}]
ARMS = [
    {"name": "learned", "kind": "learned", "weight": 2},
    {"name": "control", "kind": "default", "weight": 1},
    {"name": "holdout", "kind": "uniform", "weight": 1},
]


def _config(app: str, policy: dict, arms: list[dict], **guardrail: object) -> AppConfig:
    experiment = {"name": "exp1", "arms": arms, "guardrail": {"min_decisions": 100, **guardrail}}
    return AppConfig.model_validate({"name": app, "policy": policy, "experiment": experiment})


def _decide(service: DecisionService, app: str, n: int, units: int) -> list:
    async def run() -> list:
        out = []
        for i in range(n):
            body = orjson.dumps({"unit_id": f"u{i % units}", "actions": ACTIONS})
            out.append(await service.decide(app, body))
        return out

    return asyncio.run(run())


def _reward(action: str, event_id: str) -> float:
    """good pays 1 six times in ten, meh three, bad one (fixed by the event id)."""
    x = hashlib.blake2b(event_id.encode(), digest_size=2).digest()[0] % 10
    return float(x < {"good": 6, "meh": 3, "bad": 1}[action])


def test_units_keep_their_arm_and_records_carry_it(event_log: EventLog, app_name: str) -> None:
    config = _config(app_name, {"kind": "uniform"}, ARMS)
    event_log.configs.put(config)
    service = DecisionService(event_log, ServiceSettings())
    try:
        decisions = _decide(service, app_name, 600, units=200)
    finally:
        service.close()
    arms_of_unit = defaultdict(set)
    for i, d in enumerate(decisions):
        (record,) = event_log.decisions.records(app_name, d.event_id)
        meta = record[META_KEY]
        arms_of_unit[f"u{i % 200}"].add(meta["arm"])
        expected = assign(config.experiment, f"u{i % 200}")
        assert meta["arm"] == expected.arm.name
        assert (
            meta["arm_probability"]
            == expected.probability
            == {1: 0.25, 2: 0.5}[int(expected.arm.weight)]
        )
        pmf = [0.0] * 3  # in the order offered
        for a, p in zip(record["a"], record["p"], strict=True):
            pmf[a - 1] = p
        if meta["arm"] == "control":  # the default action, but for the floor
            assert pmf == pytest.approx([1 - 2 * 0.001, 0.001, 0.001])
        else:  # uniform: the learned policy here is uniform too
            assert pmf == pytest.approx([1 / 3] * 3)
    assert all(len(arms) == 1 for arms in arms_of_unit.values())
    counts = defaultdict(int)
    for arms in arms_of_unit.values():
        counts[next(iter(arms))] += 1
    assert 70 < counts["learned"] < 130 and counts["control"] > 25 and counts["holdout"] > 25


def _join_and_check(log: EventLog, app: str) -> dict:
    while log.join.join_due(app, now=time.time() + 3600):
        pass
    Reporter(log, app).catch_up()
    state = Supervisor(log).check(app)
    assert state is not None
    return state


def test_a_sabotaged_arm_trips_the_guardrail_and_traffic_returns_to_default(
    event_log: EventLog, app_name: str
) -> None:
    sabotaged = {"kind": "fixed", "action_id": "bad"}  # a model made bad on purpose
    arms = [ARMS[0], {**ARMS[1], "weight": 2}]
    event_log.configs.put(_config(app_name, sabotaged, arms))
    service = DecisionService(event_log, ServiceSettings(), poll_interval_s=0.05)
    try:
        decisions = _decide(service, app_name, 600, units=600)
        event_log.rewards.add_rewards(
            app_name,
            [
                Reward(event_id=d.event_id, value=_reward(d.action_id, d.event_id))
                for d in decisions
            ],
        )
        state = _join_and_check(event_log, app_name)
        assert state["srm"]["state"] == "ok"
        supervisor = Supervisor(event_log)
        (event,) = supervisor.events(app_name)
        assert event["kind"] == "guardrail" and "learned" in event["message"]
        weights = {a.name: a.weight for a in event_log.configs.get(app_name).experiment.arms}
        assert weights == {"learned": 0.0, "control": 4.0}
        engine = service.runtime(app_name).engine
        wait_for(lambda: engine.config.experiment.arms[0].weight == 0.0, 10, "the new weights")
        after = _decide(service, app_name, 100, units=100)
        arms = {
            event_log.decisions.records(app_name, d.event_id)[0][META_KEY]["arm"] for d in after
        }
        assert arms == {"control"}
        assert {d.action_id for d in after} <= {"good", "bad", "meh"}
    finally:
        service.close()


def test_a_tampered_split_is_flagged_as_sample_ratio_mismatch(
    event_log: EventLog, app_name: str
) -> None:
    from banditrec.decision.engine import DecisionEngine
    from banditrec.decision.schema import DecisionRequest

    config = _config(app_name, {"kind": "uniform"}, ARMS[:2], enabled=False)
    event_log.configs.put(config)
    engine = DecisionEngine(config)
    records = []
    for i in range(3000):
        request = DecisionRequest(event_id=f"e{i}", unit_id=f"u{i}", actions=ACTIONS)
        (record,) = engine.decide_logged(request)[1]
        # the tampering: a third of the learned arm's traffic never reaches the log
        if record[META_KEY]["arm"] != "learned" or i % 3:
            records.append(record)
    event_log.decisions.write(app_name, records)
    state = _join_and_check(event_log, app_name)
    assert state["srm"]["state"] == "mismatch" and state["srm"]["p_value"] < 0.001
    (event,) = Supervisor(event_log).events(app_name)
    assert event["kind"] == "srm"
    _join_and_check(event_log, app_name)  # still mismatched: no second event
    assert len(Supervisor(event_log).events(app_name)) == 1


def test_experiment_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="unique"):
        ExperimentConfig(name="e", arms=[ARMS[0], ARMS[0]])
    with pytest.raises(ValidationError, match="weight above 0"):
        ExperimentConfig(name="e", arms=[{**a, "weight": 0} for a in ARMS])


def test_patch_refuses_a_bad_experiment_over_http(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    bad = {"experiment": {"name": "e", "arms": [{"name": "a", "kind": "nope"}]}}
    r = httpx.patch(f"{svc.url}/v1/apps/content", json=bad, headers=svc.headers())
    assert r.status_code == 422
    assert "experiment" in r.text
    info = httpx.get(f"{svc.url}/v1/apps/content", headers=svc.headers()).json()
    assert info["config"]["experiment"] is None


def test_an_apprentice_is_promoted_once_the_learned_policy_is_shown_better(
    event_log: EventLog, app_name: str
) -> None:
    from banditrec.decision.engine import DecisionEngine

    actions = [{"id": "good"}, {"id": "best"}, {"id": "bad"}]  # "good" is the default
    pays = {"good": 3, "best": 9, "bad": 1}  # in ten
    config = AppConfig.model_validate(
        {
            "name": app_name,
            "mode": "apprentice",
            "min_probability": 0.1,  # what an apprentice's logs need to be evaluable
            "policy": {"kind": "fixed", "action_id": "best"},  # the model it learned
            "promotion": {"min_events": 500},
        }
    )
    event_log.configs.put(config)
    model = DecisionEngine(config)
    event_log.models.publish(app_name, model.model_bytes(), "0-0", 0)
    service = DecisionService(event_log, ServiceSettings())
    supervisor = Supervisor(event_log)
    try:

        async def run() -> list:
            return [
                await service.decide(app_name, orjson.dumps({"actions": actions}))
                for _ in range(300)
            ]

        def serve_and_join() -> None:
            decisions = asyncio.run(run())
            rewards = []
            for d in decisions:
                x = hashlib.blake2b(d.event_id.encode(), digest_size=2).digest()[0] % 10
                rewards.append(Reward(event_id=d.event_id, value=float(x < pays[d.action_id])))
            event_log.rewards.add_rewards(app_name, rewards)
            while event_log.join.join_due(app_name, now=time.time() + 3600):
                pass

        serve_and_join()
        found = supervisor.promote(app_name, event_log.configs.get(app_name))
        assert found is not None and found["events"] == 300  # too few to judge: no change
        assert event_log.configs.get(app_name).mode == "apprentice"
        serve_and_join()
        found = supervisor.promote(app_name, event_log.configs.get(app_name))
        assert found["learned"]["lower"] > found["default_action"]["mean"]
        assert event_log.configs.get(app_name).mode == "online"
        (event,) = supervisor.events(app_name)
        assert event["kind"] == "promotion"
    finally:
        service.close()
