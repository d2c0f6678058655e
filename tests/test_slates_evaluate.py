"""`banditrec evaluate` on a slate log: the estimates of known policies, with intervals."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from banditrec import DecisionEngine
from banditrec.cli import app
from banditrec.decision.record import set_reward
from banditrec.slates import SlateRequest

runner = CliRunner()
ITEMS = [{"id": f"item-{i}", "features": {"kind": {f"k{i % 3}": 1}}} for i in range(6)]
ATTRACTION = {f"item-{i}": 0.15 + 0.12 * i for i in range(6)}
POSITIONS = 3


def run(engine: DecisionEngine, n: int, seed: int) -> tuple[list[dict], float]:
    """n slates served by `engine` with clicks from a position-based model; mean slate reward."""
    rng = np.random.default_rng(seed)
    records, total = [], 0.0
    for i in range(n):
        request = SlateRequest(event_id=f"{seed}-{i}", actions=ITEMS, positions=POSITIONS)
        _, positions = engine.decide_slate_logged(request)
        for record in positions:
            meta = record["_banditrec"]
            chosen = meta["action_ids"][record["_labelIndex"]]
            click = float(rng.random() < ATTRACTION[chosen] / meta["position"])
            total += click
            records.append(set_reward(record, click))
    return records, total / n


@pytest.fixture(scope="module")
def slate_log(tmp_path_factory):
    logger = DecisionEngine.from_config({"name": "feed", "policy": {"kind": "uniform"}})
    records, _ = run(logger, 3000, seed=1)
    path = tmp_path_factory.mktemp("slates") / "feed.dsjson"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_evaluate_on_a_slate_log_estimates_known_policies_within_their_intervals(
    slate_log, tmp_path
):
    out = tmp_path / "report.json"
    fixed = {"name": "feed", "policy": {"kind": "fixed", "action_id": "item-5"}}
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(slate_log),
            "--policy",
            "uniform",
            "--policy",
            f"top={json.dumps(fixed)}",
            "--no-learn",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3,000 slates" in result.output and "cascade_dr" in result.output
    report = json.loads(out.read_text())
    logged = report["logged_value"]
    same = report["policies"]["uniform"]["cascade_ips"]
    assert same["value"] == pytest.approx(logged)  # the logging policy: every weight is 1
    # "top" serves item-5 first, then the first candidates offered (the fixed policy's default)
    _, truth = run(DecisionEngine.from_config(fixed), 8000, seed=2)
    for method in ("cascade_ips", "cascade_dr"):
        est = report["policies"]["top"][method]
        assert est["ci_low"] <= truth <= est["ci_high"], (method, est, truth)
        ess = est["ess"]  # a deterministic target keeps ~1/6, 1/30, 1/120 of the slates
        assert len(ess) == POSITIONS and ess[0] > ess[1] > ess[2] > 10
    assert (
        report["policies"]["top"]["cascade_dr"]["stderr"]
        < report["policies"]["top"]["cascade_ips"]["stderr"]
    )


def test_an_unknown_slate_estimator_is_refused(slate_log):
    result = runner.invoke(app, ["evaluate", str(slate_log), "--policy", "uniform", "-e", "ips"])
    assert result.exit_code != 0 and "slate estimator" in result.output
