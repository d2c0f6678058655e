"""Decision log: what is served is stored before it is acknowledged, once, never overwritten."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import DecisionRequest
from banditrec.eventlog import EventLog, connect
from tests.plugins.redis_server import make_requests


@pytest.fixture
def engine(event_log: EventLog, app_name: str) -> DecisionEngine:
    config = AppConfig(name=app_name, reward=RewardConfig(wait_seconds=60.0))
    event_log.configs.put(config)
    return DecisionEngine(config)


def test_records_are_stored_as_served(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    req = make_requests(1)[0]
    decision, records = engine.decide_logged(req)
    assert event_log.decisions.write(app_name, records) == [None]
    stored = event_log.decisions.get(app_name, req.event_id)
    assert stored == orjson.loads(orjson.dumps(records[0]))
    assert stored["_banditrec"]["action_ids"][stored["_labelIndex"]] == decision.action_id
    assert stored["_label_probability"] == decision.probability
    assert event_log.decisions.get(app_name, "unknown") is None


def test_a_repeated_event_id_gets_the_original_record(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    req = make_requests(1)[0]
    _, first = engine.decide_logged(req, now=1_000.0)
    event_log.decisions.write(app_name, first)
    _, second = engine.decide_logged(req, now=2_000.0)  # same id, another time
    previous = event_log.decisions.write(app_name, second)
    assert previous[0]["Timestamp"] == first[0]["Timestamp"]
    assert event_log.decisions.get(app_name, req.event_id)["_banditrec"]["decided_at"] == 1_000.0
    stats = event_log.joined.stats(app_name)
    assert (stats["decisions"], stats["repeated_event_ids"]) == (1, 1)


def test_multi_slot_event_stores_one_record_per_slot(event_log: EventLog, app_name: str) -> None:
    config = AppConfig(name=app_name, slots=[{"name": "top"}, {"name": "side"}])
    event_log.configs.put(config)
    engine = DecisionEngine(config)
    req = make_requests(1, slots=["top", "side"])[0]
    _, records = engine.decide_logged(req)
    assert event_log.decisions.write(app_name, records) == [None, None]
    stored = event_log.decisions.records(app_name, req.event_id)
    assert [r["EventId"] for r in stored] == [f"{req.event_id}/top", f"{req.event_id}/side"]
    assert (
        event_log.decisions.get(app_name, req.event_id, slot="side")["_banditrec"]["slot"] == "side"
    )
    assert event_log.joined.stats(app_name)["decisions"] == 2
    assert event_log.joined.stats(app_name)["events"] == 1


def test_a_batch_of_many_events_in_one_call(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    records = [r for req in make_requests(1200) for r in engine.decide_logged(req)[1]]
    assert event_log.decisions.write(app_name, records) == [None] * 1200
    assert event_log.joined.stats(app_name)["pending_events"] == 1200


def test_records_of_another_app_are_refused(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    _, records = engine.decide_logged(make_requests(1)[0])
    with pytest.raises(ValueError, match="logged under app"):
        event_log.decisions.write("some-other-app", records)
    with pytest.raises(ValueError, match="not a decision record"):
        event_log.decisions.write(app_name, [{"EventId": "x"}])
    assert event_log.joined.stats(app_name).get("decisions", 0) == 0


def test_concurrent_callers_are_each_stored(redis_url: str, app_name: str, tmp_path) -> None:
    """Threads writing at once, each through its own pipeline: every decision stored once."""
    log = EventLog(connect(redis_url), spool_dir=tmp_path / "spool")
    config = AppConfig(name=app_name)
    log.configs.put(config)
    engine = DecisionEngine(config)
    per_thread = [make_requests(150, seed=s) for s in range(8)]
    prepared = [[engine.decide_logged(r)[1] for r in reqs] for reqs in per_thread]
    errors: list[BaseException] = []

    def worker(batches: list[list[dict]]) -> None:
        try:
            for records in batches:
                assert log.decisions.write(app_name, records) == [None]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in prepared]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert log.joined.stats(app_name)["decisions"] == 8 * 150
    log.close()


def test_repeated_ids_inside_one_batch(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    req = DecisionRequest(event_id="same", actions=[{"id": "a"}, {"id": "b"}])
    _, first = engine.decide_logged(req, now=time.time())
    _, second = engine.decide_logged(req, now=time.time() + 5)
    out = event_log.decisions.write(app_name, [*first, *second])
    assert out[0] is None
    assert out[1]["Timestamp"] == first[0]["Timestamp"]


def test_a_record_that_is_not_json_is_refused(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    _, records = engine.decide_logged(make_requests(1)[0])
    records[0]["_banditrec"]["extra"] = {1, 2}  # a set: not JSON
    with pytest.raises(ValueError, match="cannot be serialized"):
        event_log.decisions.write(app_name, records)
    _, fine = engine.decide_logged(make_requests(1, seed=1)[0])
    assert event_log.decisions.write(app_name, fine) == [None]
    assert event_log.joined.stats(app_name)["decisions"] == 1


def test_a_record_that_is_not_json_fails_only_its_own_caller(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    """Callers written in one pipeline (the serving writer): a bad record fails its caller
    alone. Records before it in the same call (earlier chunks) may already be logged, which is
    harmless: they are real decisions, and logging them again is a no-op."""
    from banditrec.eventlog.decisions import _DECISION_CHUNK, DecisionJob

    def records(n: int, seed: int) -> list[dict]:
        return [r for req in make_requests(n, seed=seed) for r in engine.decide_logged(req)[1]]

    good = records(30, seed=1)
    long_bad = records(_DECISION_CHUNK + 10, seed=2)
    long_bad[-1]["_banditrec"]["extra"] = {1, 2}
    jobs = [DecisionJob.of(app_name, r) for r in (good, long_bad)]
    event_log.decisions.write_jobs(jobs)
    assert jobs[0].error is None and jobs[0].result == [None] * 30
    assert isinstance(jobs[1].error, ValueError)
    assert "cannot be serialized" in str(jobs[1].error)
    # the good caller and the bad caller's records before the bad chunk; nothing else
    stats = event_log.joined.stats(app_name)
    assert 30 <= stats["decisions"] <= 30 + _DECISION_CHUNK + 9
    assert event_log.decisions.get(app_name, long_bad[-1]["EventId"]) is None

    # A bad record early in a long call: the call's later chunks are skipped, and a caller
    # queued behind it is still written.
    early_bad = records(3 * _DECISION_CHUNK, seed=3)
    early_bad[1]["_banditrec"]["extra"] = {1, 2}
    after = records(20, seed=4)
    jobs = [DecisionJob.of(app_name, r) for r in (early_bad, after)]
    event_log.decisions.write_jobs(jobs)
    assert isinstance(jobs[0].error, ValueError)
    assert jobs[1].error is None and jobs[1].result == [None] * 20
    assert event_log.decisions.get(app_name, early_bad[-1]["EventId"]) is None
    assert event_log.decisions.get(app_name, after[-1]["EventId"]) is not None


def test_the_writer_batches_concurrent_callers_and_answers_each(
    event_log: EventLog, app_name: str, engine: DecisionEngine
) -> None:
    """16 threads through the serving writer: each caller gets its own answer (a repeat its
    stored record, a record that is not JSON its own ValueError), every decision is stored once."""
    from banditrec.serving.writer import DecisionWriter

    decided = [engine.decide_logged(r)[1] for r in make_requests(400, seed=5)]
    bad = [dict(decided[0][0], _banditrec={**decided[0][0]["_banditrec"], "extra": {1}})]
    bad[0]["EventId"] = bad[0]["_banditrec"]["event_id"] = "not-json"
    writer = DecisionWriter(event_log.decisions)
    try:
        answers: list = [None] * len(decided)

        def work(share: range) -> None:
            for i in share:
                answers[i] = writer.submit(app_name, decided[i]).result()

        threads = [threading.Thread(target=work, args=(range(k, 400, 16),)) for k in range(16)]
        for th in threads:
            th.start()
        with pytest.raises(ValueError, match="cannot be serialized"):
            writer.submit(app_name, bad).result()
        for th in threads:
            th.join()
        assert answers == [[None]] * len(decided)
        assert writer.submit(app_name, decided[7]).result() == decided[7]  # a repeat
    finally:
        writer.close()
    assert event_log.joined.stats(app_name)["decisions"] == len(decided)
