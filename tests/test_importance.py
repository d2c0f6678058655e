"""Namespace importance: counterfactual value lost when withheld, with paired intervals."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import banditrec.envs  # noqa: F401  (registers the simulators)
from banditrec import DecisionEngine
from banditrec.decision.features import FeatureSet
from banditrec.replay.importance import feature_importance, log_namespaces, without
from banditrec.replay.simulated import simulate_log

POLICY = {
    "name": "content",
    "policy": {
        "kind": "vw",
        "interactions": ["ut"],
        "action_id_feature": False,
        "explorer": {"type": "epsilon", "epsilon": 0.05},
    },
}


@pytest.fixture(scope="module")
def content_log():
    """Content-v0 logged by a uniform policy, with a namespace of pure noise in every context
    (and no action-id namespace, as an app with action_id_feature: false logs)."""
    env = gym.make("banditrec/Content-v0", n_candidates=5, quality_weight=2.0, interest_weight=2.0)
    env.reset(seed=0)
    uniform = DecisionEngine.from_config({"name": "log", "policy": {"kind": "uniform"}})
    data = simulate_log(env, uniform, 3000, 0)
    source = data.feature_set

    def with_noise(i: int) -> FeatureSet:
        x = source(i)
        rng = np.random.default_rng(i)
        noise = {f"n{j}": float(rng.random()) for j in range(5)}
        actions = [{k: v for k, v in a.items() if k != "id"} for a in x.actions]
        return FeatureSet({**x.context, "noise": noise}, actions, x.action_ids)

    return dataclasses.replace(data, features=with_noise)


def test_noise_namespace_ranks_last_with_an_interval_including_zero(content_log, tmp_path) -> None:
    report = feature_importance(content_log, POLICY, method="ips")
    names = [n.namespace for n in report.namespaces]
    assert sorted(names) == ["item", "noise", "topic", "user"]
    noise = report.namespaces[-1]
    assert noise.namespace == "noise"
    assert noise.ci_low <= 0.0 <= noise.ci_high
    assert noise.weight_share < 0.01  # context-only: it cannot set one action apart
    for n in report.namespaces[:-1]:
        assert n.value_lost > noise.value_lost
    user = next(n for n in report.namespaces if n.namespace == "user")
    assert user.ci_low > 0.0  # personalization is worth something, and it shows
    assert sum(n.weight_share for n in report.namespaces) == pytest.approx(1.0)
    assert "noise" in report.table().splitlines()[-1]
    png = report.plot(tmp_path / "importance.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert report.to_dict()["namespaces"][0]["namespace"] == names[0]


def test_helpers(content_log) -> None:
    assert log_namespaces(content_log) == ["user", "noise", "topic", "item"]
    x = content_log.feature_set(0)
    y = without(x, "topic")
    assert "topic" not in y.actions[0] and "item" in y.actions[0] and "topic" in x.actions[0]
    with pytest.raises(ValueError, match="unknown estimator"):
        feature_importance(content_log, POLICY, method="nope")


def test_cli(content_log, tmp_path) -> None:
    import json

    import orjson
    from typer.testing import CliRunner

    from banditrec.cli import app
    from banditrec.decision.record import build_record, set_reward

    log = tmp_path / "content.dsjson"
    with open(log, "wb") as f:
        for i in range(600):
            record = build_record(
                app="content",
                event_id=content_log.event_id[i],
                features=content_log.feature_set(i),
                pmf=content_log.pi_b[i, : content_log.n_offered[i]].tolist(),
                order=[int(content_log.action[i])]
                + [a for a in range(content_log.n_offered[i]) if a != content_log.action[i]],
                model_version=0,
                policy="uniform",
                mode="online",
                now=1.7e9 + i,
            )
            f.write(orjson.dumps(set_reward(record, float(content_log.reward[i]))) + b"\n")
    out = tmp_path / "report.json"
    plot = tmp_path / "imp.png"
    result = CliRunner().invoke(
        app,
        [
            *("importance", str(log), "--policy", json.dumps(POLICY["policy"])),
            *("--estimator", "ips", "--plot", str(plot), "--json", str(out), "--no-progress"),
            *("-n", "user", "-n", "noise"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "value lost" in result.output and plot.exists()
    assert {n["namespace"] for n in json.loads(out.read_text())["namespaces"]} == {"user", "noise"}
    bad = CliRunner().invoke(app, ["importance", str(log), "-p", "vw", "--estimator", "x"])
    assert bad.exit_code != 0
