"""The join moves each decision to the joined stream exactly once; retention never drops
what the learner has not learned."""

from __future__ import annotations

import threading
import time

import redis

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import Reward
from banditrec.eventlog import AppKeys, EventLog, connect
from tests.plugins.redis_server import make_requests


def log_many(log: EventLog, app: str, n: int, *, wait_seconds: float = 0.0) -> list[str]:
    config = AppConfig(name=app, reward=RewardConfig(wait_seconds=wait_seconds))
    log.configs.put(config)
    engine = DecisionEngine(config)
    requests = make_requests(n)
    records = [r for req in requests for r in engine.decide_logged(req)[1]]
    log.decisions.write(app, records)
    return [req.event_id for req in requests]


def test_two_joiners_racing_join_each_event_once(redis_url: str, app_name: str) -> None:
    setup = EventLog(connect(redis_url))
    event_ids = log_many(setup, app_name, 3000)
    setup.rewards.add_rewards(app_name, [Reward(event_id=e, value=1.0) for e in event_ids[::3]])
    counts = [0, 0]
    start = threading.Barrier(2)

    def joiner(i: int) -> None:
        log = EventLog(connect(redis_url))  # its own connection, as another process would have
        start.wait()
        while log.joined.stats(app_name)["pending_events"]:
            counts[i] += log.join.join_due(app_name, limit=50)

    threads = [threading.Thread(target=joiner, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    joined = setup.joined.read(app_name, count=10_000)
    ids = [r["EventId"] for _, r in joined]
    assert len(ids) == len(set(ids)) == 3000
    assert sorted(ids) == sorted(event_ids)
    assert sum(counts) == 3000 and min(counts) > 0, counts  # both did part of the work
    assert setup.joined.stats(app_name)["joined"] == 3000
    assert sum(r["_banditrec"]["reward"] for _, r in joined) == 1000


def test_join_waits_for_the_deadline(event_log: EventLog, app_name: str) -> None:
    log_many(event_log, app_name, 10, wait_seconds=30.0)
    assert event_log.join.join_due(app_name) == 0
    assert event_log.join.join_due(app_name, now=time.time() + 31) == 10
    assert event_log.join.join_due(app_name, now=time.time() + 31) == 0


def test_retention_never_trims_what_was_not_learned(event_log: EventLog, app_name: str) -> None:
    log_many(event_log, app_name, 100)
    event_log.join.join_due(app_name)
    ids = [sid for sid, _ in event_log.joined.read(app_name, count=1000)]
    event_log.configs.set_retention(app_name, max_len=10)
    assert event_log.joined.trim(app_name) == 0  # no model yet: nothing learned, nothing trimmed
    event_log.models.publish(app_name, {"": b"m"}, ids[49], 50)
    assert event_log.joined.trim(app_name) == 49  # up to (not past) the learned offset
    remaining = [sid for sid, _ in event_log.joined.read(app_name, count=1000)]
    assert remaining == ids[49:]
    event_log.models.publish(app_name, {"": b"m"}, ids[-1], 100)
    event_log.joined.trim(app_name)
    assert [sid for sid, _ in event_log.joined.read(app_name, count=1000)] == ids[-10:]


def test_retention_by_age(event_log: EventLog, app_name: str) -> None:
    log_many(event_log, app_name, 20)
    event_log.join.join_due(app_name)
    ids = [sid for sid, _ in event_log.joined.read(app_name)]
    event_log.models.publish(app_name, {"": b"m"}, ids[-1], 20)
    event_log.configs.set_retention(app_name, max_age_s=3600)
    assert event_log.joined.trim(app_name) == 0  # all younger than an hour
    assert event_log.joined.trim(app_name, now=time.time() + 7200) == 19  # the last is the offset
    assert event_log.joined.stats(app_name)["joined_stream_len"] == 1


def test_every_key_of_an_app_is_in_one_cluster_slot(event_log: EventLog, app_name: str) -> None:
    """So the Lua scripts stay atomic and legal on a Redis Cluster."""
    from redis.crc import key_slot

    k = AppKeys(app_name)
    keys = [
        k.event("e/1"),
        k.early("e"),
        k.model_version_key(3),
        k.pending,
        k.early_due,
        k.joined,
        k.orphans,
        k.config,
        k.config_version,
        k.rules,
        k.stats,
        k.model,
        k.models,
        k.learner_lease,
    ]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert all(key.startswith(f"br:{{{app_name}}}:") for key in keys)
    assert isinstance(event_log.client, redis.Redis)
