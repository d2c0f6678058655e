"""End to end over real HTTP: an RL app serves journeys, its log rebuilds the trajectories,
and sequential OPE runs on the service's export."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from banditrec.config import AppConfig, RewardConfig, RLPolicyConfig
from banditrec.decision.journey import journey_request
from banditrec.envs.journey import ACTION_IDS, OBS_FIELDS, EngagementJourneyEnv
from banditrec.eventlog import EventLog, connect
from banditrec.eventlog.export import export_joined
from banditrec.rl.evaluate import rl_engine
from banditrec.rl.ope import evaluate_sequential
from banditrec.rl.pretrained import JOURNEY_PPO
from banditrec.rl.targets import engine_pmfs
from banditrec.rl.trajectories import read_trajectories
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest

APP = "journey_rl"
FLOOR = 0.01


def _wait_for_app(http: httpx.Client, app: str, timeout_s: float = 30.0) -> None:
    polling.wait_for(
        lambda: http.get(f"/v1/apps/{app}").status_code == 200, timeout_s, f"app {app!r} loaded"
    )


@pytest.fixture(scope="module")
def rl_app(banditrec_service: ServiceUnderTest) -> ServiceUnderTest:
    log = EventLog(connect(banditrec_service.redis_url))
    log.configs.put(
        AppConfig(
            name=APP,
            policy=RLPolicyConfig(module_path=str(JOURNEY_PPO)),
            min_probability=FLOOR,
            reward=RewardConfig(wait_seconds=0.5),
        )
    )
    with httpx.Client(base_url=banditrec_service.url, headers=banditrec_service.headers()) as http:
        _wait_for_app(http, APP)
    return banditrec_service


def test_rl_app_serves_journeys_and_its_log_rebuilds_them(
    rl_app: ServiceUnderTest, tmp_path
) -> None:
    local = rl_engine(JOURNEY_PPO.read_bytes(), min_probability=FLOOR)  # what should serve
    env = EngagementJourneyEnv(horizon=8)
    sent: dict[tuple[str, int], tuple[str, float, float]] = {}
    with httpx.Client(base_url=rl_app.url, headers=rl_app.headers(), timeout=10) as http:
        for user in range(4):
            episode = f"user-{user}"
            obs, info = env.reset(seed=user)
            step, done = 0, False
            while not done:
                request = journey_request(obs, OBS_FIELDS, info["actions"], episode, step)
                r = http.post(f"/v1/apps/{APP}/decisions", json=request.model_dump(mode="json"))
                assert r.status_code == 200, r.text
                d = r.json()
                # the probability served is the RL module's, with the app's floor
                pmf = local.pmf(local.features(request)[None], 0)
                assert d["probability"] == pytest.approx(pmf[ACTION_IDS.index(d["action_id"])])
                obs, reward, terminated, truncated, info = env.step(
                    ACTION_IDS.index(d["action_id"])
                )
                r = http.post(
                    f"/v1/apps/{APP}/rewards", json={"event_id": d["event_id"], "value": reward}
                )
                assert r.json()["outcome"] == "accepted"
                sent[(episode, step)] = (d["action_id"], d["probability"], float(reward))
                step += 1
                done = terminated or truncated

        # a request without the journey state is a 4xx that says what is missing
        bad = {
            "context": {"user": {"value": 1}},
            "actions": [{"id": "rest"}, {"id": "sms_tip_morning"}],
        }
        r = http.post(f"/v1/apps/{APP}/decisions", json=bad)
        assert r.status_code == 422 and "context.state is missing" in r.text

    log = EventLog(connect(rl_app.redis_url))
    path = tmp_path / "export.jsonl"
    polling.wait_for(lambda: export_joined(log, APP, path) >= len(sent), 30.0, "the rewards joined")

    traj = read_trajectories(path, progress=False)
    assert sorted(traj.episode_ids) == [f"user-{u}" for u in range(4)]
    for e, episode in enumerate(traj.episode_ids):
        steps = traj.steps[e][traj.mask[e]].tolist()
        assert steps == sorted(s for (ep, s) in sent if ep == episode)
        for t, step in enumerate(steps):
            action_id, probability, reward = sent[(episode, step)]
            assert traj.action_ids[traj.action[e, t]] == action_id
            assert traj.pscore[e, t] == pytest.approx(probability)
            assert traj.reward[e, t] == pytest.approx(reward)

    # sequential OPE runs on the export: the served policy evaluated on its own log
    pi = engine_pmfs(local, traj)
    report = evaluate_sequential(traj, pi, methods=["pdis", "wpdis"], n_boot=200)
    on_policy = traj.reward.sum(axis=1).mean()
    assert report.estimates["pdis"].value == pytest.approx(on_policy, rel=1e-4)
    assert np.isfinite(report.estimates["pdis"].ci_high)
