"""Report buckets: every joined decision counted once per resolution, under its arm, with the
default action's off-policy estimate beside the online reward; two reporters never count
an event twice."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.record import META_KEY
from banditrec.decision.schema import Reward
from banditrec.eventlog import EventLog, connect
from banditrec.reporting import Reporter, ReportStore
from banditrec.reporting.report import reports
from tests.plugins.redis_server import make_requests


def _log_and_join(log: EventLog, app: str, n: int, mode: str = "online") -> list[dict]:
    """n decisions, a reward of 1 for the first action offered, joined now."""
    config = AppConfig(name=app, mode=mode, reward=RewardConfig(wait_seconds=0.0))
    log.configs.put(config)
    engine = DecisionEngine(config)
    records = [r for req in make_requests(n) for r in engine.decide_logged(req)[1]]
    log.decisions.write(app, records)
    rewards = [
        Reward(event_id=r[META_KEY]["event_id"], value=1.0)
        for r in records
        if r["_labelIndex"] == 0
    ]
    log.rewards.add_rewards(app, rewards)
    while log.join.join_due(app, now=time.time() + 1):
        pass
    return records


def test_buckets_count_each_joined_decision_once_with_its_arm(
    event_log: EventLog, app_name: str
) -> None:
    records = _log_and_join(event_log, app_name, 400)
    reporter = Reporter(event_log, app_name, batch=150)  # several batches
    assert reporter.catch_up() == 400
    assert reporter.catch_up() == 0  # nothing new: nothing counted twice
    report = reports(ReportStore(event_log.client), [app_name], resolution="minute", hours=1)[
        app_name
    ]
    window = report["window"]
    assert list(window["arms"]) == ["learned"]
    assert window["all"]["decisions"] == 400
    assert sum(report["buckets"]["all"]["decisions"]) == 400
    assert len(report["buckets"]["start"]) == len(report["buckets"]["arms"]["learned"]["decisions"])
    n_first = sum(1 for r in records if r["_labelIndex"] == 0)
    assert window["all"]["reward"]["mean"] == pytest.approx(n_first / 400, abs=1e-4)
    # IPS of "always the first action" is Σ 1[a = first]·r/p / n; its reward is always 1
    ips = sum(1 / r["p"][0] for r in records if r["_labelIndex"] == 0) / 400
    assert window["all"]["default_action_ips"]["mean"] == pytest.approx(ips, rel=1e-3)
    low, high = (window["all"]["default_action_ips"][k] for k in ("lower", "upper"))
    assert low < ips < high
    explored = sum(1 for r in records if r["p"][0] < max(r["p"]))
    assert window["all"]["exploration_share"] == pytest.approx(explored / 400, abs=1e-4)
    assert window["model_versions"] == {"0": 400}
    assert report["totals"]["learned"]["decisions"] == 400
    hourly = reports(ReportStore(event_log.client), [app_name], hours=2)[app_name]
    assert hourly["window"]["all"]["decisions"] == 400


def test_apprentice_decisions_are_the_default_arm(event_log: EventLog, app_name: str) -> None:
    _log_and_join(event_log, app_name, 50, mode="apprentice")
    Reporter(event_log, app_name).catch_up()
    window = reports(ReportStore(event_log.client), [app_name], hours=1)[app_name]["window"]
    assert list(window["arms"]) == ["default"]
    # apprentice serves the first action (but for the floor's share): rewarded 1
    assert window["arms"]["default"]["reward"]["mean"] > 0.9


def test_two_reporters_racing_count_each_event_once(redis_url: str, app_name: str) -> None:
    setup = EventLog(connect(redis_url))
    _log_and_join(setup, app_name, 2000)
    start = threading.Barrier(2)
    counted = [0, 0]

    def run(i: int) -> None:
        reporter = Reporter(EventLog(connect(redis_url)), app_name, batch=100)
        start.wait()
        counted[i] = reporter.catch_up()
        counted[i] += reporter.catch_up()  # whatever the other one's win left over

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counted) == 2000
    totals = ReportStore(setup.client).totals([app_name])[app_name]
    assert totals["learned"]["n"] == 2000


def test_report_refuses_unknown_resolution_and_window(event_log: EventLog) -> None:
    store = ReportStore(event_log.client)
    with pytest.raises(ValueError, match="resolution"):
        reports(store, ["x"], resolution="week")
    with pytest.raises(ValueError, match="hours"):
        reports(store, ["x"], resolution="minute", hours=24 * 30)


def test_entries_read_in_part_count_as_the_whole_record_would(
    event_log: EventLog, app_name: str
) -> None:
    from banditrec.eventlog.records import joined_record
    from banditrec.reporting.buckets import Delta

    _log_and_join(event_log, app_name, 30)
    store = ReportStore(event_log.client)
    entries = store.joined_after(app_name, None, 100)
    assert len(entries) == 30 and all(len(e) == 5 for e in entries)  # features left in Redis
    fast, whole = Delta.empty("k"), Delta.empty("k")
    for entry in entries:
        fast.add_entry(entry)
    for _, fields in event_log.joined.read_raw(app_name, count=100):
        whole.add_record(joined_record(fields))
    assert fast.cells == whole.cells
    _, fields = event_log.joined.read_raw(app_name, count=1)[0]
    record = orjson.dumps(orjson.loads(fields[b"rec"]), option=orjson.OPT_SORT_KEYS)
    one_fast, one_whole = Delta.empty("k"), Delta.empty("k")
    one_fast.add_entry([b"1-0", fields[b"h"], record])  # another layout: parsed whole
    one_whole.add_record(joined_record(fields))
    assert one_fast.cells == one_whole.cells
