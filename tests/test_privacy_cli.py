"""`banditrec privacy erase | rotate-key | retention | audit` against a real Redis."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from banditrec.cli import app as cli
from banditrec.config import AppConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import DecisionRequest
from banditrec.eventlog import EventLog
from banditrec.privacy.keys import PseudonymKeys

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(cli, ["privacy", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_privacy_commands(redis_client, redis_url: str, app_name: str) -> None:
    log = EventLog(redis_client)
    config = AppConfig(name=app_name, privacy={"identifiers": ["user.id"]})
    log.configs.put(config)
    engine = DecisionEngine(config)
    engine.set_pseudonymizer(PseudonymKeys(redis_client).current(app_name))
    for i in range(4):
        request = DecisionRequest(
            event_id=f"c{i}", context={"user": {"id": f"u{i % 2}"}}, actions=[{"id": "a"}]
        )
        log.decisions.write(app_name, engine.decide_logged(request)[1])
    common = ["--app", app_name, "--redis-url", redis_url]

    receipt = json.loads(_run("erase", *common, "--subject", "u0"))
    assert receipt["erased"]["pending"] == 2 and receipt["key_versions"] == [1]
    assert log.decisions.get(app_name, "c0") is None and log.decisions.get(app_name, "c1")

    assert "version 2 is current" in _run("rotate-key", *common)
    out = _run("retention", *common, "--max-events", "1234", "--max-age-days", "30")
    assert "1234 joined events, for 30 days" in out
    assert log.configs.get(app_name).privacy.retention.max_events == 1234
    assert log.configs.retention(app_name) == (1234, 30 * 86400.0)

    entries = [json.loads(line) for line in _run("audit", *common).splitlines()]
    assert [e["action"] for e in entries] == ["retention", "key_rotation", "erasure"]
    assert {e["actor"] for e in entries} == {"cli"}
    bad = runner.invoke(cli, ["privacy", "audit", *common, "--action", "nope"])
    assert bad.exit_code != 0 and "one of" in bad.output
    missing = runner.invoke(
        cli, ["privacy", "audit", "--app", "no-such-app", "--redis-url", redis_url]
    )
    assert missing.exit_code != 0 and "no app" in missing.output
