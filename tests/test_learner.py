"""From "a decision was served" to "the model serving the next request learned its reward"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.features import FeatureSet
from banditrec.decision.schema import DecisionRequest, Reward
from banditrec.eventlog import AppKeys, EventLog, EventLogSettings, ModelConflictError
from banditrec.learner import AppWorker, Learner
from banditrec.serving.watcher import ModelWatcher
from tests import polling
from tests.plugins.redis_server import make_requests

BEST = "a2"  # every user likes it; the others earn nothing


def vw_config(app: str, **reward) -> AppConfig:
    return AppConfig(
        name=app,
        # Counters survive save/load, so a model resumed from bytes is byte-identical to one
        # that never stopped.
        policy={
            "kind": "vw",
            "explorer": {"type": "epsilon", "epsilon": 0.1},
            "extra_args": ["--preserve_performance_counters"],
        },
        reward=RewardConfig(**{"wait_seconds": 60.0, **reward}),
    )


def wait_for(predicate, what: str = "condition") -> None:
    polling.wait_for(predicate, 60.0, what)


def probe_pmf(engine: DecisionEngine) -> dict[str, float]:
    req = make_requests(1, seed=99)[0]
    x = engine.features(req)[None]
    return dict(zip(x.action_ids, engine.pmf(x, 0), strict=True))


def serve_and_reward(
    log: EventLog, engine: DecisionEngine, requests: list[DecisionRequest], batch: int = 200
) -> None:
    for start in range(0, len(requests), batch):
        chunk = requests[start : start + batch]
        decided = [engine.decide_logged(r) for r in chunk]
        log.decisions.write(engine.config.name, [rec for _, recs in decided for rec in recs])
        rewards = [
            Reward(event_id=d.event_id, value=float(d.action_id == BEST)) for d, _ in decided
        ]
        log.rewards.add_rewards(engine.config.name, rewards)


def test_10000_decisions_through_the_full_path(event_log: EventLog, app_name: str) -> None:
    config = vw_config(app_name, join_on_first=True)
    event_log.configs.put(config)
    serving = DecisionEngine(config)
    watcher = ModelWatcher(event_log, app_name, serving)
    before = probe_pmf(serving)
    worker = AppWorker(event_log, app_name, join_interval_s=0.02, publish_every_s=0.2).start()
    try:
        requests = make_requests(10_000, n_actions=4)
        for start in range(0, len(requests), 1000):
            serve_and_reward(event_log, serving, requests[start : start + 1000])
            watcher.poll()  # the replica picks up what was learned so far
        wait_for(
            lambda: event_log.joined.stats(app_name).get("learned", 0) == 10_000,
            what="learning all",
        )
    finally:
        worker.stop()
    stats = event_log.joined.stats(app_name)
    assert stats["decisions"] == stats["joined"] == stats["learned"] == 10_000
    assert stats["rewards"] == 10_000 and stats.get("skipped", 0) == 0
    assert stats["pending_events"] == 0
    latest = event_log.models.latest(app_name)
    assert latest is not None and latest.n_learned == 10_000
    assert watcher.poll() or serving.model_version == latest.version
    assert serving.model_version == latest.version
    after = probe_pmf(serving)
    assert max(before, key=before.get) != BEST
    assert max(after, key=after.get) == BEST and after[BEST] > 0.9


def test_a_reward_changes_the_served_pmf_after_the_next_publish(
    event_log: EventLog, app_name: str
) -> None:
    config = vw_config(app_name, join_on_first=True)
    event_log.configs.put(config)
    serving = DecisionEngine(config)
    watcher = ModelWatcher(event_log, app_name, serving)
    learner = Learner(event_log, app_name)
    before = probe_pmf(serving)
    serve_and_reward(event_log, serving, make_requests(300, seed=5))
    event_log.join.join_due(app_name)
    assert learner.learn_available() == 300
    assert watcher.poll() is False and probe_pmf(serving) == before  # learned, not yet published
    version = learner.publish()
    assert version == 1
    assert watcher.poll() is True and serving.model_version == 1
    after = probe_pmf(serving)
    assert after != before and max(after, key=after.get) == BEST


_KILLED_LEARNER = textwrap.dedent(
    """
    import os, signal, sys
    from banditrec.eventlog import EventLog, connect
    from banditrec.learner import Learner

    log = EventLog(connect(sys.argv[1]))
    learner = Learner(log, sys.argv[2], batch=250)
    for i in range(9):
        learner.learn_available()
        if i % 4 == 3:
            learner.publish()
    # 2250 events learned, 2000 of them published: die with the last 250 only in memory.
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_learner_killed_mid_stream_learns_every_event_exactly_once(
    event_log: EventLog, app_name: str, redis_url: str
) -> None:
    config = vw_config(app_name)
    event_log.configs.put(config)
    serve_and_reward(event_log, DecisionEngine(config), make_requests(4000, seed=3))
    while event_log.join.join_due(app_name, now=time.time() + 61, limit=5000):
        pass
    clean = DecisionEngine(config)  # the clean run: the same events, from memory, in order
    for _, record in event_log.joined.read(app_name, count=10_000):
        clean.learn(record)

    root = Path(__file__).resolve().parents[1]  # this checkout's package first, then tests/
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_LEARNER, redis_url, app_name], env=env, timeout=120
    )
    assert proc.returncode == -9
    assert event_log.joined.stats(app_name)["learned"] == 2000
    assert event_log.models.latest(app_name).n_learned == 2000

    restarted = Learner(event_log, app_name)
    while restarted.step():
        pass
    stats = event_log.joined.stats(app_name)
    assert stats["learned"] == 4000 == stats["joined"]
    latest = event_log.models.latest(app_name)
    assert latest.n_learned == 4000
    assert latest.models == clean.model_bytes()


def test_two_learners_never_count_an_event_twice(event_log: EventLog, app_name: str) -> None:
    config = vw_config(app_name, join_on_first=True)
    event_log.configs.put(config)
    serve_and_reward(event_log, DecisionEngine(config), make_requests(1000, seed=4))
    event_log.join.join_due(app_name)
    a, b = Learner(event_log, app_name, batch=400), Learner(event_log, app_name, batch=400)
    assert a.learn_available() == 400  # a learns, but b publishes first
    assert b.step(max_events=600) == 600
    assert a.publish() is None  # conflict: a reloads b's model and offset
    assert a.state.offset == b.state.offset and a.state.n_consumed == 600
    while a.step():
        pass
    assert event_log.joined.stats(app_name)["learned"] == 1000
    assert event_log.models.latest(app_name).n_learned == 1000
    with pytest.raises(ModelConflictError):
        event_log.models.publish(app_name, {"": b"x"}, "0-1", 0, expected_version=1)


def test_only_one_learner_holds_the_lease(event_log: EventLog, app_name: str) -> None:
    event_log.configs.put(vw_config(app_name))
    token = event_log.models.acquire_lease(app_name, ttl_s=5)
    assert token is not None
    assert event_log.models.acquire_lease(app_name, ttl_s=5) is None
    assert event_log.models.renew_lease(app_name, token, ttl_s=5)
    assert not event_log.models.renew_lease(app_name, "someone-else", ttl_s=5)
    event_log.models.release_lease(app_name, token)
    assert event_log.models.acquire_lease(app_name, ttl_s=5) is not None


def test_rollback_and_kept_versions(redis_client, app_name: str) -> None:
    log = EventLog(redis_client, settings=EventLogSettings(models_kept=3))
    config = vw_config(app_name, join_on_first=True)
    log.configs.put(config)
    serving = DecisionEngine(config)
    watcher = ModelWatcher(log, app_name, serving)
    learner = Learner(log, app_name)
    requests = make_requests(500, seed=6)
    for start in range(0, 500, 100):
        serve_and_reward(log, serving, requests[start : start + 100])
        log.join.join_due(app_name)
        learner.step()
    kept = log.models.list(app_name)
    assert [m.version for m in kept] == [3, 4, 5]
    assert [m.n_learned for m in kept] == [300, 400, 500]
    v3 = log.models.get(app_name, 3)
    assert log.models.rollback(app_name, 3) == 6
    current = log.models.latest(app_name)
    assert current.models == v3.models and current.note == "rollback to v3"
    assert current.offset == kept[-1].offset  # nothing learned since is learned again
    assert watcher.poll() and serving.model_version == 6
    with pytest.raises(LookupError, match="not kept"):
        log.models.rollback(app_name, 1)
    # The learner was at v5: its next publish conflicts, it reloads v6 and goes on from there.
    serve_and_reward(log, serving, make_requests(50, seed=7))
    log.join.join_due(app_name)
    assert learner.step() == 50  # learned, but its publish conflicted with the rollback
    assert learner.state.base_version == 6 and learner.pending == 0
    assert learner.step() == 50  # the same events again, now on top of v6
    assert log.models.latest(app_name).n_learned == 550
    assert log.joined.stats(app_name)["learned"] == 550


def test_watcher_follows_live_config_changes(event_log: EventLog, app_name: str) -> None:
    config = vw_config(app_name)
    event_log.configs.put(config)
    serving = DecisionEngine(config)
    watcher = ModelWatcher(event_log, app_name, serving)
    watcher.poll()
    changed = config.model_copy(update={"min_probability": 0.2})
    event_log.configs.put(changed)
    watcher.poll()
    assert serving.config.min_probability == 0.2
    x = FeatureSet.build({"u": {"a": 1}}, [("x", {}), ("y", {}), ("z", {})])
    assert np.min(serving.pmf(x, 0)) >= 0.2 - 1e-9


def test_a_slot_added_live_keeps_what_the_other_slots_learned(
    event_log: EventLog, app_name: str
) -> None:
    policy = vw_config(app_name).policy
    reward = RewardConfig(join_on_first=True)
    one = AppConfig(name=app_name, slots=[{"name": "top", "policy": policy}], reward=reward)
    event_log.configs.put(one)
    serving = DecisionEngine(one)
    decided = [serving.decide_logged(r) for r in make_requests(100, slots=["top"])]
    event_log.decisions.write(app_name, [rec for _, recs in decided for rec in recs])
    event_log.rewards.add_rewards(
        app_name, [Reward(event_id=d.event_id, value=1.0) for d, _ in decided]
    )
    event_log.join.join_due(app_name)
    assert Learner(event_log, app_name).step() == 100
    top_v1 = event_log.models.latest(app_name).models["top"]

    slots = [{"name": "top", "policy": policy}, {"name": "side", "policy": policy}]
    two = AppConfig(name=app_name, slots=slots, reward=reward)
    event_log.configs.put(two)
    learner = Learner(event_log, app_name)
    learner.load()
    assert learner.engine.model_bytes()["top"] == top_v1  # kept; 'side' starts fresh
    assert learner.state.base_version == 1
    watcher = ModelWatcher(event_log, app_name, serving)
    assert watcher.poll() is True  # the new config, and v1 for the slot it has
    assert serving.model_bytes()["top"] == top_v1 and set(serving.model_bytes()) == {"top", "side"}


def test_a_record_that_cannot_be_learned_is_skipped_and_counted(
    event_log: EventLog, app_name: str
) -> None:
    config = vw_config(app_name, join_on_first=True)
    event_log.configs.put(config)
    serving = DecisionEngine(config)
    serve_and_reward(event_log, serving, make_requests(10, seed=8))
    event_log.join.join_due(app_name)
    # Something wrote a record the learner cannot read (a bug elsewhere, a manual XADD).
    event_log.client.xadd(AppKeys(app_name).joined, {"h": "bad||1|1|1|0", "rec": b"{}"})
    serve_and_reward(event_log, serving, make_requests(10, seed=9))
    event_log.join.join_due(app_name)
    learner = Learner(event_log, app_name)
    assert learner.step() == 21
    stats = event_log.joined.stats(app_name)
    assert (stats["learned"], stats["skipped"]) == (20, 1)
    assert event_log.models.latest(app_name).n_learned == 21
    assert stats["quarantined"] == 1
    (kept,) = event_log.quarantine.list(app_name)
    assert (kept["event_id"], kept["record"]) == ("bad", "{}")


def test_poison_events_are_quarantined_and_old_unicode_records_learned(
    event_log: EventLog, app_name: str, tmp_path: Path
) -> None:
    """Records an earlier version logged as they came: a namespace starting with a non-ASCII
    character (VW crashed on it) is learned escaped; a NUL VW would cut at is quarantined."""
    config = vw_config(app_name, join_on_first=True)
    event_log.configs.put(config)
    serving = DecisionEngine(config)
    _, (record,) = serving.decide_logged(make_requests(1, seed=3)[0])
    joined = AppKeys(app_name).joined

    def logged_as(c: dict, event_id: str) -> bytes:
        return orjson.dumps({**record, "c": c, "EventId": event_id})

    multi = record["c"]["_multi"]
    poison = {
        "unicode": {"用户": {"城市": "北京"}, "_multi": multi},
        "unicode-action": {"u": {"a": 1}, "_multi": [{"é": {"x": 1}}, *multi[1:]]},
        "nul": {"u": {"a\x00b": 1}, "_multi": multi},
        "not-json": None,
    }
    for event_id, c in poison.items():
        rec = b"{not json" if c is None else logged_as(c, event_id)
        event_log.client.xadd(joined, {"h": f"{event_id}||1|1|1|0", "rec": rec})
    serve_and_reward(event_log, serving, make_requests(10, seed=9))
    event_log.join.join_due(app_name)
    learner = Learner(event_log, app_name)
    assert learner.step() == 14  # past the poison, in one step
    stats = event_log.joined.stats(app_name)
    assert (stats["learned"], stats["skipped"], stats["quarantined"]) == (12, 2, 2)
    kept = {q["event_id"]: q["why"] for q in event_log.quarantine.list(app_name)}
    assert set(kept) == {"nul", "not-json"}
    assert "NUL" in kept["nul"]
    assert event_log.quarantine.export(app_name, tmp_path / "q.jsonl") == 2
    lines = [orjson.loads(line) for line in (tmp_path / "q.jsonl").read_bytes().splitlines()]
    assert [q["event_id"] for q in lines] == ["nul", "not-json"]  # oldest first


def test_an_app_that_cannot_learn_leaves_the_others_learning(redis_client, tmp_path: Path) -> None:
    """Two apps in one learner pool: one's stored config no VW can run, one's poison
    events; the other app's events are learned and published all the same."""
    from banditrec.serving.learners import LearnerOptions, LearnerPool

    log = EventLog(redis_client)
    names = [f"iso{uuid_hex()}", f"iso{uuid_hex()}"]
    broken, healthy = names
    try:
        bad = vw_config(broken, join_on_first=True)
        bad.policy.extra_args.append("--bogus_flag")  # stored unchecked (an older version)
        log.configs.put(bad)
        log.client.xadd(AppKeys(broken).joined, {"h": "x||1|1|1|0", "rec": b"{not json"})
        good = vw_config(healthy, join_on_first=True)
        log.configs.put(good)
        serve_and_reward(log, DecisionEngine(good), make_requests(20, seed=4))
        pool = LearnerPool(log, LearnerOptions(publish_every_s=0.1, join_interval_s=0.05))
        try:
            wait_for(
                lambda: (m := log.models.latest(healthy)) is not None and m.n_learned == 20,
                "the healthy app's model",
            )
            assert set(pool.apps()) >= {broken, healthy}
        finally:
            pool.close()
    finally:
        for app in names:
            log.drop_app(app)


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:10]
