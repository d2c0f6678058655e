"""The RL policy behind the one Policy interface: module files, pmfs, the engine, bytes."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from banditrec.config import AppConfig, RLPolicyConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.journey import journey_request, observation, step_event_id
from banditrec.envs.journey import ACTION_IDS, OBS_FIELDS, EngagementJourneyEnv
from banditrec.policies import POLICY_CLASSES, load_policy, make_policy
from banditrec.policies.rl import RLPolicy
from banditrec.policies.rl_module import ModuleFormatError, load_module
from banditrec.replay.target import target_pmfs
from banditrec.rl.collect import journeys
from banditrec.rl.evaluate import EnginePolicy, rl_engine, served_rl_pmfs, true_value
from banditrec.rl.pretrained import JOURNEY_PPO
from banditrec.rl.targets import engine_pmfs
from banditrec.rl.trajectories import from_records

ENV = "banditrec/EngagementJourney-v0"


@pytest.fixture(scope="module")
def module_bytes() -> bytes:
    return JOURNEY_PPO.read_bytes()


@pytest.fixture(scope="module")
def states() -> tuple[list[np.ndarray], list[dict]]:
    env = EngagementJourneyEnv()
    obs, info = env.reset(seed=3)
    out, infos = [obs], [info]
    for a in [5, 0, 8, 8, 0, 1, 12, 0]:
        obs, *_, info = env.step(a)
        out.append(obs)
        infos.append(info)
    return out, infos


def test_importing_banditrec_loads_neither_torch_nor_rllib() -> None:
    code = (
        "import sys, banditrec, banditrec.policies, banditrec.decision.engine, banditrec.rl.ope, "
        "banditrec.rl.trajectories, banditrec.cli\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('ray.rllib')]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rl_kind_is_a_policy_config_and_a_policy_class() -> None:
    cfg = AppConfig.model_validate({"name": "j", "policy": {"kind": "rl", "temperature": 0.5}})
    assert isinstance(cfg.policy, RLPolicyConfig)
    assert POLICY_CLASSES["rl"] is RLPolicy
    with pytest.raises(ValidationError, match="temperature"):
        AppConfig.model_validate({"policy": {"kind": "rl", "temperature": 0}})
    with pytest.raises(ValidationError):
        AppConfig.model_validate({"policy": {"kind": "rl", "pickle": "x"}})


def test_packaged_module_matches_the_journey_env(module_bytes: bytes) -> None:
    card = load_module(module_bytes).card
    assert card.feature_names == list(OBS_FIELDS)
    assert card.action_ids == list(ACTION_IDS)
    assert card.algo == "PPO" and card.env_id == ENV
    assert len(module_bytes) < 2_000_000


def test_pmf_is_the_module_distribution_over_the_offered_actions(module_bytes, states) -> None:
    obs_list, infos = states
    policy = RLPolicy.from_bytes(RLPolicyConfig(), module_bytes)
    app = AppConfig(name="j", policy=RLPolicyConfig(), min_probability=0.0)
    engine = DecisionEngine(app, {None: policy})
    full = policy.distribution(np.stack(obs_list))
    assert np.allclose(full.sum(axis=1), 1.0) and (full > 0).all()
    for k, (obs, info) in enumerate(zip(obs_list, infos, strict=True)):
        req = journey_request(obs, OBS_FIELDS, info["actions"], "u1", k)
        x = engine.features(req)[None]
        assert np.allclose(policy.pmf(x, 0), full[k])
        # a subset, in another order: the same distribution restricted and renormalized
        offered = ["sms_offer_evening", "rest", "push_tip_morning"]
        sub = engine.features(journey_request(obs, OBS_FIELDS, offered, "u1", k))[None]
        expected = full[k][[ACTION_IDS.index(a) for a in offered]]
        assert np.allclose(engine.pmf(sub, 0), expected / expected.sum())


def test_decisions_carry_the_served_probability_and_the_floor(module_bytes, states) -> None:
    obs, info = states[0][2], states[1][2]
    engine = rl_engine(module_bytes, min_probability=0.02)
    decision = engine.decide(journey_request(obs, OBS_FIELDS, info["actions"], "u7", 2))
    pmf = served_rl_pmfs(engine, obs[None], list(ACTION_IDS))[0]
    assert pmf.min() >= 0.02 - 1e-12
    chosen = ACTION_IDS.index(decision.action_id)
    assert decision.probability == pytest.approx(pmf[chosen])
    greedy = rl_engine(module_bytes, greedy=True)
    g = greedy.pmf(
        greedy.features(journey_request(obs, OBS_FIELDS, info["actions"], "u", 0))[None], 0
    )
    assert sorted(g.tolist())[-1] == 1.0


def test_bad_requests_say_what_to_fix(module_bytes, states) -> None:
    obs, info = states[0][0], states[1][0]
    engine = rl_engine(module_bytes)
    no_state = journey_request(obs, OBS_FIELDS, info["actions"], "u", 0).model_copy(
        update={"context": {"user": {"value": 1.0}}}
    )
    with pytest.raises(ValueError, match=r"context\.state is missing"):
        engine.decide(no_state)
    partial = journey_request(obs[:5], OBS_FIELDS[:5], info["actions"], "u", 0)
    with pytest.raises(ValueError, match=r"lacks the state features \['resp_push'"):
        engine.decide(partial)
    unknown = journey_request(obs, OBS_FIELDS, ["rest", "carrier_pigeon"], "u", 0)
    with pytest.raises(ValueError, match="carrier_pigeon"):
        engine.decide(unknown)
    with pytest.raises(ValueError, match="must be a number"):
        observation({"state": {n: "high" for n in OBS_FIELDS}}, OBS_FIELDS)


def test_no_module_serves_uniform_until_one_is_published(module_bytes, states) -> None:
    obs, info = states[0][0], states[1][0]
    engine = DecisionEngine(AppConfig(name="j", policy=RLPolicyConfig(), min_probability=0.0))
    x = engine.features(journey_request(obs, OBS_FIELDS, info["actions"], "u", 0))[None]
    assert np.allclose(engine.pmf(x, 0), 1 / len(ACTION_IDS))
    assert engine.model_bytes() == {"": b""}
    engine.load_models({"": module_bytes}, version=3)
    assert engine.model_version == 3
    expected = engine.policy.distribution(obs[None])[0]  # type: ignore[attr-defined]
    assert np.allclose(engine.pmf(x, 0), expected)
    # learning is a count: RL policies are trained offline
    engine.policy.learn(None)  # type: ignore[arg-type]
    assert engine.policy.n_learned == 1


def test_bytes_round_trip_and_reconfiguration(module_bytes, states, tmp_path) -> None:
    obs = np.stack(states[0])
    path = tmp_path / "p.npz"
    path.write_bytes(module_bytes)
    from_path = make_policy(RLPolicyConfig(module_path=str(path)))
    from_data = load_policy(RLPolicyConfig(), from_path.to_bytes())
    assert from_path.to_bytes() == module_bytes
    assert np.array_equal(from_path.distribution(obs), from_data.distribution(obs))
    hot = from_data.reconfigured(RLPolicyConfig(temperature=3.0))
    assert hot.module is from_data.module  # same module, no reload
    entropy = [
        -(p * np.log(p)).sum(axis=1).mean()
        for p in (from_data.distribution(obs), hot.distribution(obs))
    ]
    assert entropy[1] > entropy[0]


def test_module_files_are_checked_and_never_unpickled(module_bytes, tmp_path) -> None:
    with pytest.raises(ModuleFormatError, match="not an exported RL module"):
        load_module(b"\x80\x04not a zip")
    buf = io.BytesIO()
    np.savez(buf, card=np.array([{"algo": "PPO"}], dtype=object))
    with pytest.raises(ModuleFormatError):
        load_module(buf.getvalue())  # an object array would need pickle: refused
    with np.load(io.BytesIO(module_bytes)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    weight = next(k for k in arrays if k.startswith("w:"))
    arrays[weight] = arrays[weight][:1]
    broken = io.BytesIO()
    np.savez(broken, **arrays)
    with pytest.raises(ModuleFormatError, match="do not fit"):
        load_module(broken.getvalue())
    with pytest.raises(ModuleFormatError, match="no exported RL module"):
        make_policy(RLPolicyConfig(module_path=str(tmp_path / "missing.npz")))


def test_batched_pmfs_equal_the_engine_row_by_row(module_bytes) -> None:
    behaviour = rl_engine(module_bytes, temperature=1.5, min_probability=0.01)
    records = list(journeys(behaviour, ENV, 6, seed=4, env_kwargs={"horizon": 10}))
    traj = from_records(records)
    target = rl_engine(module_bytes, min_probability=0.005)
    fast = engine_pmfs(target, traj)
    slow = traj.by_action(target_pmfs(target, traj.log, progress=False))
    assert np.allclose(fast, slow, rtol=1e-5, atol=1e-9)  # one forward pass or many
    # the log carries the behaviour's own probabilities, which the engine reproduces
    logged = engine_pmfs(behaviour, traj)
    taken = np.take_along_axis(logged, traj.action[:, :, None], axis=2)[:, :, 0]
    assert np.allclose(taken[traj.mask], traj.pscore[traj.mask])
    assert records[0]["EventId"] == step_event_id(traj.episode_ids[0], 0)


def test_stepped_and_batched_monte_carlo_agree(module_bytes) -> None:
    engine = rl_engine(module_bytes)
    kw = {"horizon": 15}
    batched = true_value(EnginePolicy(engine, list(OBS_FIELDS), 1), ENV, kw, 4000, seed=2)
    stepped = true_value(EnginePolicy(engine, list(OBS_FIELDS), 1), ENV, kw, 400, seed=3)
    gap = abs(batched.mean - stepped.mean)
    assert gap < 3 * np.hypot(batched.std_error, stepped.std_error)
