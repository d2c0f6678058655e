"""Export: joined events → DSJson lines that VW reads with --dsjson, and back."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import vowpal_wabbit_next as vw
from typer.testing import CliRunner

from banditrec.cli import app as cli
from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.record import to_interaction
from banditrec.decision.schema import Reward
from banditrec.eventlog import AppKeys, EventLog
from banditrec.eventlog.export import export_joined, read_dsjson, read_dsjson_records
from banditrec.eventlog.records import stream_id_tuple
from tests import polling
from tests.plugins.redis_server import make_requests


def joined_events(log: EventLog, app: str, n: int, seed: int = 0) -> DecisionEngine:
    config = AppConfig(name=app, reward=RewardConfig(wait_seconds=0.0, default=-0.1))
    log.configs.put(config)
    engine = DecisionEngine(config)
    decided = [engine.decide_logged(r) for r in make_requests(n, seed=seed)]
    log.decisions.write(app, [rec for _, recs in decided for rec in recs])
    log.rewards.add_rewards(app, [Reward(event_id=d.event_id, value=1.0) for d, _ in decided[::2]])
    while log.join.join_due(app):
        pass
    return engine


def test_export_is_read_by_vw_and_back(event_log: EventLog, app_name: str, tmp_path: Path) -> None:
    engine = joined_events(event_log, app_name, 300)
    path = tmp_path / "joined.dsjson"
    assert export_joined(event_log, app_name, path) == 300

    # VW's own command line reads the file as DSJson.
    output, _ = vw.run_cli_driver(["--cb_explore_adf", "--dsjson", "-d", str(path)])
    assert re.search(r"number of examples = 300\b", output)

    events = list(read_dsjson(path))
    from_redis = [rec for _, rec in event_log.joined.read(app_name, count=1000)]
    assert [e.event_id for e in events] == [r["EventId"] for r in from_redis]
    assert sum(e.reward == 1.0 for e in events) == 150
    assert sum(e.reward == -0.1 for e in events) == 150
    for event, record in zip(events[:20], from_redis[:20], strict=True):
        a, b = to_interaction(event), to_interaction(record)
        assert (a.chosen, a.probability, a.reward) == (b.chosen, b.probability, b.reward)
        assert a.features.vw_json() == b.features.vw_json()

    # Learning from the file gives the model learning from Redis gives.
    from_file, from_log = DecisionEngine(engine.config), DecisionEngine(engine.config)
    for record in read_dsjson_records(path):
        from_file.learn(record)
    for record in from_redis:
        from_log.learn(record)
    assert from_file.model_bytes() == from_log.model_bytes()


def test_export_a_time_range(event_log: EventLog, app_name: str, tmp_path: Path) -> None:
    joined_events(event_log, app_name, 40, seed=1)
    newest = event_log.client.xrevrange(AppKeys(app_name).joined, count=1)[0][0]
    last_ms = stream_id_tuple(newest)[0]
    middle = (last_ms + 1.5) / 1000  # after every entry so far
    # Every later entry gets a later millisecond: wait for the clock to pass `middle`.
    polling.wait_for(lambda: time.time() * 1000 > last_ms + 3, 5.0, "the clock to move on")
    joined_events(event_log, app_name, 60, seed=2)
    assert export_joined(event_log, app_name, tmp_path / "a", until=middle) == 40
    assert export_joined(event_log, app_name, tmp_path / "b", since=middle) == 60
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle + 3600)) + "Z"
    assert export_joined(event_log, app_name, tmp_path / "c", since=iso) == 0
    with pytest.raises(ValueError, match="must be after"):
        export_joined(event_log, app_name, tmp_path / "d", since=middle, until=middle - 1)
    with pytest.raises(ValueError, match="ISO 8601"):
        export_joined(event_log, app_name, tmp_path / "d", since="yesterday")


def test_export_command(event_log: EventLog, app_name: str, redis_url: str, tmp_path: Path) -> None:
    joined_events(event_log, app_name, 25)
    out = tmp_path / "cli.dsjson"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["export", "--app", app_name, "--out", str(out), "--redis-url", redis_url]
    )
    assert result.exit_code == 0, result.output
    assert f"25 joined events of '{app_name}'" in result.output
    assert len(out.read_text().splitlines()) == 25

    bad = runner.invoke(
        cli,
        [
            "export",
            "--app",
            app_name,
            "--out",
            str(out),
            "--redis-url",
            redis_url,
            "--since",
            "soon",
        ],
    )
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
    missing = runner.invoke(
        cli, ["export", "--app", "no-such-app", "--out", str(out), "--redis-url", redis_url]
    )
    assert missing.exit_code == 2 and "no app 'no-such-app'" in missing.output


def test_read_dsjson_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.dsjson"
    path.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.dsjson:2"):
        list(read_dsjson_records(path))


def test_export_command_uses_the_embedded_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from banditrec.eventlog import EmbeddedRedis, connect

    monkeypatch.delenv("REDIS_URL", raising=False)
    data_dir = tmp_path / ".banditrec"
    server = EmbeddedRedis(data_dir / "redis").start()
    joined_events(EventLog(connect(server.url)), "kept", 12)
    runner = CliRunner()
    out = tmp_path / "x.dsjson"
    args = ["export", "--app", "kept", "--out", str(out), "--data-dir", str(data_dir)]
    running = runner.invoke(cli, args)  # `banditrec serve` still up: its server is used
    assert running.exit_code == 0, running.output
    assert server.running
    server.stop()
    stopped = runner.invoke(cli, args)  # nothing running: the data is opened, then closed
    assert stopped.exit_code == 0, stopped.output
    assert len(out.read_text().splitlines()) == 12
    assert EmbeddedRedis.running_url(data_dir / "redis") is None
    empty = runner.invoke(cli, [*args[:-1], str(tmp_path / "nowhere")])
    assert empty.exit_code == 2 and "no Redis URL" in empty.output
