"""Redis going away: decisions are still served, their records wait in the spool, and reach
Redis in order when it returns: none lost, none duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import Reward
from banditrec.eventlog import (
    AppKeys,
    EmbeddedRedis,
    EventLog,
    EventLogSettings,
    EventLogUnavailable,
    connect,
)
from tests import polling
from tests.plugins.redis_server import make_requests

APP = "outage"


def wait_for(predicate, what: str = "condition") -> None:
    polling.wait_for(predicate, 20.0, what)


def start_app(log: EventLog) -> DecisionEngine:
    config = AppConfig(name=APP, reward=RewardConfig(wait_seconds=600.0, aggregation="sum"))
    log.configs.put(config)
    return DecisionEngine(config)


def test_redis_stopped_under_a_stream_of_decisions(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    server = restartable_redis
    log = EventLog(connect(server.url), spool_dir=tmp_path / "spool")
    engine = start_app(log)
    requests = make_requests(3000)
    prepared = [engine.decide_logged(r)[1] for r in requests]
    acknowledged: list[str] = []
    rewarded: list[str] = []
    errors: list[BaseException] = []

    def product() -> None:
        try:
            for req, records in zip(requests, prepared, strict=True):
                assert log.decisions.write(APP, records) == [None]
                acknowledged.append(req.event_id)
                if len(acknowledged) % 10 == 0:  # some rewards too, through the same path
                    log.rewards.add_reward(APP, req.event_id, 1.0)
                    rewarded.append(req.event_id)
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=product)
    thread.start()
    wait_for(lambda: len(acknowledged) >= 500, what="decisions before the outage")
    server.stop()
    wait_for(lambda: log.outage.spooling, what="spooling")
    at_stop = len(acknowledged)
    # Decisions keep being served while Redis is down (or all of them were, meanwhile).
    wait_for(
        lambda: len(acknowledged) >= min(at_stop + 300, 3000) or errors,
        what="decisions served while Redis is down",
    )
    assert log.outage.spooling  # still down: those went to the spool
    server.start()
    thread.join()
    assert not errors, errors
    assert len(acknowledged) == 3000
    wait_for(lambda: not log.outage.spooling, what="the spool to be replayed")

    stats = log.joined.stats(APP)
    assert stats["decisions"] == 3000, "records lost or duplicated"
    assert stats["events"] == 3000
    assert stats["pending_events"] == 3000
    assert stats["rewards"] == len(rewarded) == 300
    assert stats.get("repeated_event_ids", 0) == 0
    for event_id, records in list(zip(acknowledged, prepared, strict=True))[::97]:
        assert log.decisions.get(APP, event_id)["Timestamp"] == records[0]["Timestamp"]
    while log.join.join_due(APP, now=time.time() + 1000):
        pass
    joined = log.joined.read(APP, count=10_000)
    assert len({r["EventId"] for _, r in joined}) == len(joined) == 3000
    assert sum(r["_banditrec"]["reward"] for _, r in joined) == 300.0
    assert log.outage.spool is not None and log.outage.spool.stats.entries_replayed > 0
    log.close()


_CRASHING_PRODUCER = textwrap.dedent(
    """
    import os, sys
    from banditrec.config import AppConfig
    from banditrec.decision.engine import DecisionEngine
    from banditrec.eventlog import EventLog, connect
    from tests.plugins.redis_server import make_requests

    log = EventLog(connect(sys.argv[1]), spool_dir=sys.argv[2])
    engine = DecisionEngine(AppConfig(name="outage"))
    for req in make_requests(int(sys.argv[3]), seed=7):
        log.decisions.write("outage", engine.decide_logged(req)[1])
    assert log.outage.spooling
    os._exit(0)  # dies without closing anything, as a crash would
    """
)


def test_a_spool_left_by_a_dead_process_is_replayed(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    server = restartable_redis
    start_app(EventLog(connect(server.url)))
    server.stop()
    spool_root = tmp_path / "spool"
    root = Path(__file__).resolve().parents[1]  # the tests, and the code under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    subprocess.run(
        [sys.executable, "-c", _CRASHING_PRODUCER, server.url, str(spool_root), "400"],
        check=True,
        env=env,
        timeout=120,
    )
    assert any(spool_root.rglob("*.jsonl"))
    server.start()
    log = EventLog(connect(server.url), spool_dir=spool_root)  # a new process on the same spool
    wait_for(lambda: not log.outage.spooling, what="the adopted spool to be replayed")
    assert log.joined.stats(APP)["decisions"] == 400
    assert log.outage.spool is not None and log.outage.spool.stats.adopted_dirs == 1
    log.close()
    assert not any(spool_root.rglob("*.jsonl"))


def test_a_full_spool_refuses_loudly(
    restartable_redis: EmbeddedRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = restartable_redis
    settings = EventLogSettings(spool_max_bytes=1 << 16)
    log = EventLog(connect(server.url), spool_dir=tmp_path / "spool", settings=settings)
    engine = start_app(log)
    server.stop()
    accepted = 0
    with pytest.raises(EventLogUnavailable, match=r"spool .* is full"):
        for req in make_requests(1000):
            log.decisions.write(APP, engine.decide_logged(req)[1])
            accepted += 1
    assert 0 < accepted < 1000
    assert log.outage.spool is not None and log.outage.spool.stats.full_rejections == 1
    assert "NOT LOGGED" in caplog.text
    server.start()
    wait_for(lambda: not log.outage.spooling, what="the spool to be replayed")
    assert log.joined.stats(APP)["decisions"] == accepted  # everything acknowledged is there
    log.close()


def test_without_a_spool_an_outage_is_an_error(restartable_redis: EmbeddedRedis) -> None:
    server = restartable_redis
    log = EventLog(connect(server.url))
    engine = start_app(log)
    server.stop()
    _, records = engine.decide_logged(make_requests(1)[0])
    with pytest.raises(EventLogUnavailable):
        log.decisions.write(APP, records)
    with pytest.raises(EventLogUnavailable):
        log.rewards.add_rewards(APP, [Reward(event_id="x", value=1.0)])
    with pytest.raises(EventLogUnavailable):
        log.joined.stats(APP)
    server.start()
    assert log.decisions.write(APP, records) == [None]  # reconnects by itself


def test_a_hung_redis_times_out_into_the_spool(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    server = restartable_redis
    log = EventLog(connect(server.url, socket_timeout_s=0.5), spool_dir=tmp_path / "spool")
    engine = start_app(log)
    requests = make_requests(20)
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)  # alive but not answering
    try:
        for req in requests:
            assert log.decisions.write(APP, engine.decide_logged(req)[1]) == [None]
            # one timeout, then straight to the spool: Redis is not asked again
            assert log.outage.spooling
        assert log.outage.spool is not None and log.outage.spool.stats.entries_written == 20
    finally:
        os.kill(server.pid, signal.SIGCONT)
    wait_for(lambda: not log.outage.spooling, what="the spool to be replayed")
    assert log.joined.stats(APP)["decisions"] == 20
    log.close()


def test_workers_ride_out_an_outage(
    restartable_redis: EmbeddedRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from banditrec.learner import AppWorker

    server = restartable_redis
    log = EventLog(connect(server.url), spool_dir=tmp_path / "spool")
    config = AppConfig(name=APP, reward=RewardConfig(wait_seconds=600.0, join_on_first=True))
    log.configs.put(config)
    engine = DecisionEngine(config)
    worker = AppWorker(log, APP, join_interval_s=0.05, publish_every_s=0.2).start()
    try:
        for phase, seed in (("before", 1), ("during", 2), ("after", 3)):
            if phase == "during":
                server.stop()
            decided = [engine.decide_logged(r) for r in make_requests(200, seed=seed)]
            log.decisions.write(APP, [rec for _, recs in decided for rec in recs])
            log.rewards.add_rewards(
                APP, [Reward(event_id=d.event_id, value=1.0) for d, _ in decided]
            )
            if phase == "during":  # both workers notice the outage before Redis returns
                for worker_kind in ("joiner", "learner"):
                    wait_for(
                        lambda kind=worker_kind: any(
                            f"{kind} waiting for Redis" in r.getMessage() for r in caplog.records
                        ),
                        what=f"the {worker_kind} to wait for Redis",
                    )
                server.start()
        wait_for(
            lambda: log.joined.stats(APP).get("learned", 0) == 600, what="learning every event"
        )
    finally:
        worker.stop()
    stats = log.joined.stats(APP)
    assert stats["decisions"] == stats["rewards"] == stats["joined"] == stats["learned"] == 600
    log.close()


def test_a_resend_after_a_broken_connection_replays_every_call_taken() -> None:
    """Script calls are built lazily while the pipeline streams; a resend must carry the
    calls the broken pass had already taken (sent or not), then the rest, each once."""
    from banditrec.eventlog.scripts import _Replayable

    built: list[int] = []

    def calls():
        for i in range(4):
            built.append(i)
            yield ("log_decisions", [], [i])

    taken = _Replayable(calls())
    first = iter(taken)
    next(first), next(first)  # the connection breaks while the second call is sent
    assert [c[2][0] for c in taken] == [0, 1, 2, 3]
    assert built == [0, 1, 2, 3]  # each call built once
    assert [c[2][0] for c in taken.calls] == [0, 1, 2, 3]


def test_while_spooling_a_record_that_is_not_json_fails_only_its_caller(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    from banditrec.eventlog.decisions import DecisionJob

    server = restartable_redis
    log = EventLog(connect(server.url), spool_dir=tmp_path / "spool")
    engine = start_app(log)
    server.stop()

    def records(n: int, seed: int) -> list[dict]:
        return [r for req in make_requests(n, seed=seed) for r in engine.decide_logged(req)[1]]

    assert log.decisions.write(APP, records(1, seed=10)) == [None]  # spooled
    assert log.outage.spooling  # so the next writes go straight to the spool, in order
    good, bad = records(5, seed=11), records(5, seed=12)
    bad[2]["_banditrec"]["extra"] = {1, 2}  # a set: not JSON
    jobs = [DecisionJob.of(APP, r) for r in (good, bad)]
    log.decisions.write_jobs(jobs)
    assert jobs[0].error is None and jobs[0].result == [None] * 5
    assert isinstance(jobs[1].error, ValueError)
    assert "cannot be serialized" in str(jobs[1].error)
    server.start()
    wait_for(lambda: not log.outage.spooling, what="the spool to be replayed")
    assert log.joined.stats(APP)["decisions"] == 1 + 5  # the good callers' records, and only those
    assert log.decisions.get(APP, good[0]["EventId"]) is not None
    log.close()


def test_a_reward_spooled_elsewhere_still_meets_its_replayed_decision(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    """Decisions spooled by one replica and their rewards by another replay at different
    times; a joiner running in between must not join the decisions with the default reward
    (the decisions' wait restarts at their replay)."""
    server = restartable_redis
    wait_s = 5.0
    deciding = EventLog(connect(server.url), spool_dir=tmp_path / "spool-a")
    config = AppConfig(name=APP, reward=RewardConfig(wait_seconds=wait_s, aggregation="sum"))
    deciding.configs.put(config)
    engine = DecisionEngine(config)
    rewarding = EventLog(connect(server.url), spool_dir=tmp_path / "spool-b")
    server.stop()
    decided = [engine.decide_logged(r) for r in make_requests(50, seed=4)]
    for _, records in decided:  # decided long enough ago that their wait was over in the outage
        records[0]["_banditrec"]["decided_at"] -= 10 * wait_s
        assert deciding.decisions.write(APP, records) == [None]
    outcomes = rewarding.rewards.add_rewards(
        APP, [Reward(event_id=d.event_id, value=2.0) for d, _ in decided]
    )
    assert set(outcomes) == {"spooled"}
    rewarding.close()  # its spool stays on disk (Redis is down) for the next process
    server.start()
    wait_for(lambda: not deciding.outage.spooling, what="the decisions' spool to be replayed")
    replayed_at = time.time()
    assert deciding.join.join_due(APP) == 0  # their wait restarted at the replay
    deadline = float(deciding.client.hget(AppKeys(APP).event(decided[0][0].event_id), "deadline"))
    assert deadline >= replayed_at + wait_s - 1.0
    adopting = EventLog(connect(server.url), spool_dir=tmp_path / "spool-b")
    wait_for(lambda: not adopting.outage.spooling, what="the rewards' spool to be replayed")
    assert deciding.joined.stats(APP)["rewards"] == 50
    while deciding.join.join_due(APP, now=time.time() + 10 * wait_s):
        pass
    joined = deciding.joined.read(APP, count=1000)
    assert [r["_banditrec"]["reward"] for _, r in joined] == [2.0] * 50
    for log in (deciding, adopting):
        log.close()
