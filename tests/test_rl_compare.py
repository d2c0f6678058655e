"""The comparison command and the OPE command, at small counts."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from banditrec.cli import app
from banditrec.rl.collect import journeys, write_jsonl
from banditrec.rl.compare import CompareSettings, compare, comparison_table
from banditrec.rl.evaluate import rl_engine
from banditrec.rl.pretrained import JOURNEY_PPO

ENV = "banditrec/EngagementJourney-v0"


def test_compare_reports_truth_ope_and_the_margin(tmp_path) -> None:
    settings = CompareSettings(
        module=JOURNEY_PPO,
        env_kwargs={"horizon": 10},
        episodes=300,
        bandit_steps=300,
        bandit_episodes=20,
        log_episodes=30,
        n_boot=50,
        n_boot_model=3,
        out=tmp_path,
    )
    summary = compare(settings, progress=False)
    names = [row["policy"] for row in summary["policies"]]
    assert (
        names[:2] == ["rl", "myopic oracle"]
        and "vw bandit" in names
        and names[2].startswith("rule")
    )
    for row in summary["policies"]:
        assert row["true_low"] <= row["true_value"] <= row["true_high"]
        assert set(row["ope"]) == {"pdis", "wpdis", "dr", "wdr", "fqe"}
    m = summary["margin"]
    assert m["low"] <= m["value"] <= m["high"] and m["versus"] in {"myopic oracle", "vw bandit"}
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["margin"] == m
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "behaviour_log.jsonl").stat().st_size > 0
    table = comparison_table(summary)
    assert "RL − " in table and "myopic oracle" in table


def test_ope_rl_command_on_a_log(tmp_path) -> None:
    behaviour = rl_engine(JOURNEY_PPO.read_bytes(), temperature=1.5, min_probability=0.01)
    log = write_jsonl(
        journeys(behaviour, ENV, 20, seed=2, env_kwargs={"horizon": 8}), tmp_path / "log.jsonl"
    )
    out = tmp_path / "ope.json"
    runner = CliRunner()
    args = ["ope-rl", "--log", str(log), "--module", str(JOURNEY_PPO), "--bootstrap-fits", "3"]
    r = runner.invoke(app, [*args, "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "pdis" in r.output and "effective sample size" in r.output
    report = json.loads(out.read_text())
    assert set(report["estimates"]) == {"pdis", "wpdis", "dr", "wdr", "fqe"}
    r = runner.invoke(
        app, ["ope-rl", "--log", str(tmp_path / "none.jsonl"), "--module", str(JOURNEY_PPO)]
    )
    assert r.exit_code != 0 and "no log file" in r.output
    r = runner.invoke(app, ["ope-rl", "--log", str(log), "--module", str(log)])
    assert r.exit_code != 0 and "not an exported RL module" in " ".join(
        r.output.replace("│", " ").split()
    )
