"""`banditrec simulate`: several exploration settings compared in one command."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from banditrec.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


def test_one_command_compares_policies_and_writes_plot_summary_and_logs(tmp_path):
    policies = tmp_path / "policies.yaml"
    policies.write_text(
        "- name: eps-0.05\n  kind: vw\n  interactions: [ut]\n"
        "- name: eps-0.3\n  kind: vw\n  interactions: [ut]\n  explorer: {type: epsilon, epsilon: 0.3}\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--env", "banditrec/Content-v0",
            "--policy", str(policies),
            "--policy", '{"name": "lin", "kind": "linucb", "dim": 64}',
            "--policy", "uniform",
            "--steps", "300",
            "--seed", "2",
            "--env-arg", "n_candidates=10",
            "--out", str(out),
            "--log",
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("eps-0.05", "eps-0.3", "lin", "uniform", "[oracle]", "[uniform]"):
        assert name in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in summary] == ["eps-0.05", "eps-0.3", "lin", "uniform"]
    assert all(s["steps"] == 300 and s["seed"] == 2 for s in summary)
    assert (out / "comparison.png").read_bytes().startswith(b"\x89PNG")
    record = json.loads((out / "logs" / "lin.dsjson").read_text().splitlines()[0])
    assert len(record["a"]) == 10 and record["_label_probability"] > 0


def test_default_policy_is_the_envs_suggested_one(tmp_path):
    result = runner.invoke(
        app,
        [
            "simulate",
            "--env",
            "banditrec/Iris-v0",
            "--steps",
            "50",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "vw-epsilon-0.05" in result.output


def test_bad_input_is_a_usage_error_that_says_what_to_fix(tmp_path):
    cases = [
        (["--policy", '{"kind": "nope"}'], "invalid policy config"),
        (["--policy", str(tmp_path / "missing.yaml")], "does not exist"),
        (["--env", "banditrec/Nope-v0"], "cannot make env"),
        (["--env-arg", "colour=red"], "unknown ContentParams setting"),
        (["--env-arg", "novalue"], "is not key=value"),
    ]
    for args, message in cases:
        result = runner.invoke(
            app, ["simulate", "--steps", "5", "--out", str(tmp_path), "--no-progress", *args]
        )
        assert result.exit_code == 2, (args, result.output)
        text = " ".join(result.output.replace("│", " ").split())
        assert message in text, (args, result.output)
