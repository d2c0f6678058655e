"""Optimization discovery: from an app's own log, recommend learning settings that are better
when run on-policy; from the CLI, and from the admin API on the app's joined stream."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

import banditrec.envs  # noqa: F401  (registers banditrec/… envs)
from banditrec.cli import app as cli
from banditrec.config import AppConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.eventlog import EventLog
from banditrec.replay import LoggedBandit, simulate_log
from banditrec.replay.discovery import SearchSpace, discover, interaction_sets
from banditrec.serving.discovery import DiscoveryRequest, run_discovery
from banditrec.serving.errors import ApiError
from tests.plugins.ray_cluster import ServiceUnderTest
from tests.test_export import joined_events
from tests.test_replay_io import service_records, write_lines

LOGGING = {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.3}}
SPACE = SearchSpace(
    explorers={
        "epsilon 0.3": {"type": "epsilon", "epsilon": 0.3},
        "epsilon 0.05": {"type": "epsilon", "epsilon": 0.05},
        "squarecb": {"type": "squarecb"},
    },
    learning_rates=(None, 2.0),
    cb_types=("mtr",),
)


def wine(seed: int, n: int, policy: dict | AppConfig) -> LoggedBandit:
    """A live-learning app on the Wine simulator (the learner updates as it serves)."""
    env = gym.make("banditrec/Wine-v0")
    env.reset(seed=0)
    engine = (
        DecisionEngine(policy)
        if isinstance(policy, AppConfig)
        else DecisionEngine.from_config({"policy": policy})
    )
    return simulate_log(env, engine, n, rng=seed, learn=True, batch_size=100, progress=False)


@pytest.fixture(scope="module")
def wine_log() -> LoggedBandit:
    return wine(1, 1500, LOGGING)


def test_the_recommended_setting_is_better_on_policy(wine_log):
    found = discover(wine_log, LOGGING, space=SPACE, progress=False)
    report = found.report
    assert [d for d, _ in found.path] == ["interactions", "explorer", "learning_rate", "cb_type"]
    assert report.recommendation != "logged policy", report.reason
    assert found.recommended_config is not None
    recommended = found.recommended_config.policy.model_dump(mode="json", by_alias=True)
    assert recommended["interactions"], "context × action crosses are what Wine needs"
    for r in report.results:
        assert r.quality is not None and r.quality.n == wine_log.n
    # on-policy, in the simulator, with fresh draws: the recommendation beats the logger
    logging_value = np.mean([wine(s, 1500, LOGGING).reward.mean() for s in (11, 12)])
    chosen_value = np.mean(
        [wine(s, 1500, found.recommended_config).reward.mean() for s in (11, 12)]
    )
    assert chosen_value > logging_value + 0.1


def test_interaction_sets_come_from_the_logs_namespaces(wine_log):
    sets = interaction_sets(wine_log)
    assert sets["none"] == [] and sets["all"] == ["::"]
    x = wine_log.feature_set(0)
    assert {c[0] for c in sets["actions"]} == {ns[0] for ns in x.context}


def test_refused_combinations_are_skipped_with_vws_reason(wine_log):
    space = SearchSpace(
        interactions={"none": []},
        explorers={"squarecb": {"type": "squarecb"}},
        learning_rates=(None,),
        cb_types=("mtr", "ips"),
    )
    found = discover(wine_log.take(range(300)), LOGGING, space=space, progress=False)
    assert list(found.skipped) == ["none | squarecb | lr default | ips"]
    assert "cb_type" in found.skipped["none | squarecb | lr default | ips"]
    assert "skipped" in found.table()


def test_evaluate_discover_from_the_command_line(wine_log, tmp_path: Path):
    env = gym.make("banditrec/Wine-v0")
    env.reset(seed=0)
    engine = DecisionEngine.from_config({"name": "wine", "policy": LOGGING})
    records, _ = service_records(env, engine, 300, seed=5)
    log = write_lines(tmp_path / "wine.dsjson", records)
    out = tmp_path / "found.json"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(log),
            "--discover",
            "--policy",
            "{kind: vw, explorer: {type: epsilon, epsilon: 0.3}}",
            "--no-progress",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "search path" in result.output and "recommendation:" in result.output
    assert "data quality: effective sample size" in result.output
    report = json.loads(out.read_text())
    assert {d["dimension"] for d in report["path"]} == {
        "interactions",
        "explorer",
        "learning_rate",
        "cb_type",
    }
    refused = CliRunner().invoke(cli, ["evaluate", str(log), "--no-progress"])
    assert refused.exit_code != 0 and "--discover" in refused.output


def test_discovery_on_an_apps_joined_stream(event_log: EventLog, app_name: str):
    with pytest.raises(ApiError, match="not enough data"):
        run_discovery(event_log, app_name, AppConfig(name=app_name), DiscoveryRequest())
    engine = joined_events(event_log, app_name, 200)
    space_free = run_discovery(
        event_log, app_name, engine.config, DiscoveryRequest(limit=120, estimators=["ips", "snips"])
    )
    assert space_free["n_rows"] == 120
    assert space_free["recommendation"] and space_free["reason"]
    assert all("quality" in r for r in space_free["results"])


def test_the_discovery_route_is_admin_only_and_checks_its_body(
    banditrec_service: ServiceUnderTest,
):
    with httpx.Client(base_url=banditrec_service.url, timeout=60) as client:
        url = "/v1/apps/content/discovery"
        assert (
            client.post(url, json={}, headers=banditrec_service.headers("decide")).status_code
            == 403
        )
        admin = banditrec_service.headers("admin")
        bad = client.post(url, json={"limit": 1}, headers=admin)
        assert bad.status_code == 422 and "limit" in bad.text
        assert client.post("/v1/apps/nope/discovery", json={}, headers=admin).status_code == 404
