"""`banditrec evaluate LOG --policy … --policy …`."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import banditrec.envs  # noqa: F401  (registers banditrec/… envs)
from banditrec.cli import app
from banditrec.decision.engine import DecisionEngine
from tests.test_replay_io import service_records, write_lines

runner = CliRunner()


@pytest.fixture(scope="module")
def wine_log(tmp_path_factory):
    env = gym.make("banditrec/Wine-v0")
    env.reset(seed=0)
    logger = DecisionEngine.from_config({"name": "wine", "policy": {"kind": "uniform"}})
    records, _ = service_records(env, logger, 1200, seed=5)
    return write_lines(tmp_path_factory.mktemp("cli") / "wine.dsjson", records)


def test_evaluate_prints_a_ranked_table_and_writes_a_plot(wine_log, tmp_path):
    policy_file = tmp_path / "softmax.yaml"
    policy_file.write_text("kind: vw\nexplorer: {type: softmax, lambda: 10}\ninteractions: [xl]\n")
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(wine_log),
            "--policy",
            "greedy={kind: vw, explorer: {type: epsilon, epsilon: 0.02}, interactions: [xl]}",
            "--policy",
            str(policy_file),
            "--policy",
            "uniform",
            "--estimator",
            "ips",
            "--estimator",
            "snips",
            "--estimator",
            "dr",
            "--plot",
            str(tmp_path / "eval.png"),
            "--json",
            str(tmp_path / "eval.json"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1,200 logged decisions" in out
    for name in ("greedy", "softmax", "uniform", "logged policy (current)", "recommendation:"):
        assert name in out
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["recommendation"] in ("greedy", "softmax")
    assert report["results"][-1]["name"] == "uniform"
    assert set(report["results"][0]["estimates"]) == {"ips", "snips", "dr"}


def test_bad_policy_and_bad_options_are_explained(wine_log, tmp_path):
    bad = runner.invoke(
        app, ["evaluate", str(wine_log), "--policy", "{kind: vw, explorer: {type: nope}}"]
    )
    assert bad.exit_code == 2 and "is not valid" in bad.output
    not_mapping = runner.invoke(app, ["evaluate", str(wine_log), "--policy", "[1, 2]"])
    assert not_mapping.exit_code == 2 and "must be a mapping" in not_mapping.output
    missing_file = runner.invoke(app, ["evaluate", str(wine_log), "--policy", "nowhere.yaml"])
    assert missing_file.exit_code == 2 and "no policy file" in missing_file.output
    estimator = runner.invoke(
        app, ["evaluate", str(wine_log), "--policy", "uniform", "-e", "magic"]
    )
    assert estimator.exit_code == 2 and "unknown estimator" in estimator.output


def test_unreadable_logs_fail_cleanly(tmp_path):
    broken = tmp_path / "broken.dsjson"
    broken.write_text('{"_label_cost": -1}\n')
    result = runner.invoke(app, ["evaluate", str(broken), "--policy", "uniform", "--no-progress"])
    assert result.exit_code == 1
    assert "broken.dsjson:1" in result.output
    absent = runner.invoke(
        app, ["evaluate", str(tmp_path / "absent.dsjson"), "--policy", "uniform"]
    )
    assert absent.exit_code == 1 and "no log file" in absent.output
