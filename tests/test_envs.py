"""The simulators: Gymnasium compliance, reproducibility, the API shape, and the truth they expose."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from banditrec import DecisionRequest, FeatureSet
from banditrec.envs import (
    ENV_IDS,
    BanditBatch,
    ContentEnv,
    SupervisedBanditEnv,
    load_dataset,
    suggested_policy,
    to_feature_set,
    to_request,
)

BANDIT_IDS = [e for e in ENV_IDS if "Journey" not in e]


def _make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_env_passes_gymnasium_check_env_without_warnings(env_id):
    env = _make(env_id).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_is_a_decision_request_with_one_expected_reward_per_action(env_id):
    env = _make(env_id)
    _, info = env.reset(seed=4)
    for _ in range(3):
        request = to_request(info, event_id="ev-1")
        assert isinstance(request, DecisionRequest)
        assert [a.id for a in request.actions] == [a["id"] for a in info["actions"]]
        x = to_feature_set(info)
        assert isinstance(x, FeatureSet) and len(x) == len(info["actions"])
        q = info["expected_rewards"]
        assert (
            isinstance(q, np.ndarray)
            and q.shape == (len(info["actions"]),)
            and np.isfinite(q).all()
        )
        _, _, _, _, info = env.step(int(np.argmax(q)))
        assert info["taken"]["expected_reward"] == pytest.approx(q.max())


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_with_a_seed_reproduces_the_whole_stream(env_id):
    def run(seed: int) -> list:
        env = _make(env_id)
        _, info = env.reset(seed=seed)
        trace = []
        for t in range(40):
            action = t % env.action_space.n
            _, reward, terminated, truncated, info = env.step(action)
            trace.append(
                (
                    reward,
                    info["context"],
                    [a["id"] for a in info["actions"]],
                    info["expected_rewards"].tolist(),
                )
            )
            if terminated or truncated:
                _, info = env.reset()
        return trace

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_every_env_has_a_suggested_policy_that_builds():
    from banditrec import DecisionEngine

    for env_id in ENV_IDS:
        DecisionEngine.from_config({"policy": suggested_policy(env_id)})
    with pytest.raises(ValueError, match="no suggested policy"):
        suggested_policy("banditrec/Nope-v0")


def test_unknown_or_impossible_settings_are_named():
    with pytest.raises(ValueError, match=r"unknown ContentParams setting\(s\) \['colour'\]"):
        gym.make("banditrec/Content-v0", colour=1)
    with pytest.raises(ValueError, match="n_candidates"):
        ContentEnv(n_candidates=50, pool_size=10)
    with pytest.raises(ValueError, match="fatigue_half_life_hours must be positive"):
        gym.make("banditrec/Channel-v0", fatigue_half_life_hours=0)
    env = _make("banditrec/Content-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action index"):
        env.unwrapped.step(25)


# --- the batched path ----------------------------------------------------------------------


@pytest.mark.parametrize("env_id", BANDIT_IDS)
def test_batch_rewards_average_to_the_expected_rewards(env_id):
    env = _make(env_id).unwrapped
    env.reset(seed=1)
    rng = np.random.default_rng(2)
    batch = env.sample_batch(40_000, rng)
    assert isinstance(batch, BanditBatch) and batch.expected_rewards.shape == (
        40_000,
        batch.n_actions,
    )
    actions = rng.integers(batch.n_actions, size=len(batch))
    rewards = batch.sample_rewards(actions, rng)
    q = batch.expected_rewards[np.arange(len(batch)), actions]
    se = rewards.std() / np.sqrt(len(batch)) + 1e-9
    assert abs(rewards.mean() - q.mean()) < 4 * se
    # true values: uniform and oracle pmfs give the uniform and oracle values
    uniform = np.full(batch.expected_rewards.shape, 1.0 / batch.n_actions)
    assert batch.value(uniform) == pytest.approx(batch.uniform_value())
    best = np.eye(batch.n_actions)[batch.oracle_actions()]
    assert batch.value(best) == pytest.approx(batch.oracle_value())
    assert batch.uniform_value() < batch.oracle_value()


@pytest.mark.parametrize("env_id", BANDIT_IDS)
def test_batch_rows_are_requests_and_feature_sets(env_id):
    env = _make(env_id).unwrapped
    env.reset(seed=1)
    batch = env.sample_batch(5, np.random.default_rng(0))
    for i in range(len(batch)):
        request = batch.request(i, event_id=f"row-{i}")
        assert len(request.actions) == batch.n_actions
        x = batch.feature_set(i)
        assert x.action_ids == [a.id for a in request.actions]
        assert env.observation_space.contains(batch.observation(i))
    with pytest.raises(ValueError, match="shape"):
        batch.sample_rewards(np.zeros(3, dtype=int), np.random.default_rng(0))
    with pytest.raises(ValueError, match="indices"):
        batch.sample_rewards(np.full(5, batch.n_actions), np.random.default_rng(0))


def test_sampling_a_batch_does_not_disturb_the_step_stream():
    def stream(sample: bool) -> list:
        env = ContentEnv()
        _, info = env.reset(seed=3)
        out = []
        for t in range(20):
            if sample and t % 5 == 0:
                env.sample_batch(100, np.random.default_rng(t))
            _, reward, _, _, info = env.step(0)
            out.append((reward, [a["id"] for a in info["actions"]]))
        return out

    assert stream(sample=True) == stream(sample=False)


def test_step_rewards_average_to_the_expected_reward_of_the_action_taken():
    env = ContentEnv()
    _, info = env.reset(seed=5)
    rng = np.random.default_rng(0)
    rewards, expected = [], []
    for _ in range(8000):
        a = int(rng.integers(len(info["actions"])))
        expected.append(info["expected_rewards"][a])
        _, r, _, _, info = env.step(a)
        rewards.append(r)
    se = np.std(rewards) / np.sqrt(len(rewards))
    assert abs(np.mean(rewards) - np.mean(expected)) < 4 * se


# --- content -------------------------------------------------------------------------------


def test_content_ranked_lists_follow_the_position_bias():
    env = ContentEnv()
    env.reset(seed=2)
    p = env.current.success_prob[0]
    best = list(np.argsort(-p)[:5])
    worst = list(np.argsort(p)[:5])
    assert env.slate_expected_reward(best) == pytest.approx(
        np.sum(env.position_bias[:5] * np.sort(p)[::-1][:5])
    )
    assert (
        env.slate_expected_reward(best)
        > env.slate_expected_reward(best[::-1])
        > env.slate_expected_reward(worst)
    )
    _, reward, _, _, info = env.step(best)
    assert reward in range(6) and info["taken"]["regret"] == pytest.approx(0.0)
    for bad in ([1, 1], [], [99]):
        with pytest.raises(ValueError, match="ranked list"):
            env.step(bad)


def test_content_items_arrive_and_interests_drift():
    env = ContentEnv(arrival_every=10, drift=0.05, n_users=20)
    _, info = env.reset(seed=0)
    first_ids = {a["id"] for a in info["actions"]}
    serials = set()
    interests_before = env._interests.copy()
    for _ in range(2000):
        _, _, _, _, info = env.step(0)
        serials |= {int(a["id"].split("-")[1]) for a in info["actions"]}
    assert max(serials) >= env.params.pool_size + 150  # ~200 new items over 2000 steps
    assert first_ids  # ids are strings like item-12
    assert np.abs(env._interests - interests_before).max() > 0.05


# --- channel -------------------------------------------------------------------------------


def test_channel_fatigue_builds_up_and_lowers_conversion():
    env = _make("banditrec/Channel-v0", n_users=50)
    _, info = env.reset(seed=0)
    email = [a["id"] for a in info["actions"]].index("email")
    fatigue, q = [], []
    for _ in range(6000):
        fatigue.append(info["context"]["fatigue"]["email"])
        q.append(info["expected_rewards"][email])
        _, reward, _, _, info = env.step(email)
        assert reward in (-0.01, 0.5 - 0.01, 1.0 - 0.01, 2.0 - 0.01)
    assert np.mean(fatigue[:20]) < 0.5 < 5.0 < np.mean(fatigue[-1000:])
    assert np.mean(q[-1000:]) < 0.5 * np.mean(q[:20])


def test_channel_reward_is_value_minus_cost():
    env = _make("banditrec/Channel-v0").unwrapped
    env.reset(seed=0)
    batch = env.sample_batch(1000, np.random.default_rng(0))
    costs = np.asarray(env.params.costs)
    assert np.allclose(batch.expected_rewards, batch.value_on_success * batch.success_prob - costs)
    assert (batch.expected_rewards[:, 1] <= 0.0).sum() > 0  # push never converts some (web) users


# --- send time -----------------------------------------------------------------------------


def test_send_time_best_hour_depends_on_the_user_and_grows_with_the_window():
    short = _make("banditrec/SendTime-v0", window_hours=1).unwrapped
    long = _make("banditrec/SendTime-v0", window_hours=6).unwrapped
    short.reset(seed=0)
    long.reset(seed=0)
    b_short = short.sample_batch(2000, np.random.default_rng(1))
    b_long = long.sample_batch(2000, np.random.default_rng(1))
    assert (b_long.expected_rewards >= b_short.expected_rewards - 1e-12).all()
    assert len(set(b_short.oracle_actions().tolist())) > 6
    assert ((b_short.expected_rewards >= 0) & (b_short.expected_rewards <= 1)).all()
    context = b_short.context(0)
    assert set(context) == {"user", "day"} and context["day"]["weekday"] in (
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    )


# --- supervised ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "wine", "iris", "breast_cancer"])
def test_sklearn_datasets_are_available_offline(name):
    X, y, features, classes = load_dataset(name)
    assert len(X) == len(y) > 100 and len(features) == X.shape[1] and len(classes) == y.max() + 1


def test_supervised_env_rewards_the_right_class_and_walks_every_example_each_epoch():
    X, y, _, _ = load_dataset("iris")
    env = SupervisedBanditEnv(X=X, y=y, class_names=["a", "b", "c"])
    _, info = env.reset(seed=0)
    seen = []
    for _ in range(len(X)):
        q = info["expected_rewards"]
        right = int(np.argmax(q))
        assert sorted(q.tolist()) == [0.0, 0.0, 1.0]
        seen.append(tuple(info["context"]["x"].values()))
        _, reward, _, _, info = env.step(right)
        assert reward == 1.0
    assert len(set(seen)) == len({tuple(np.round((r - X.mean(0)) / X.std(0), 4)) for r in X})
    _, reward, _, _, _ = env.step((right + 1) % 3)
    assert env.epoch == 2


def test_supervised_env_rejects_bad_data():
    with pytest.raises(ValueError, match="one label per row"):
        SupervisedBanditEnv(X=np.zeros((3, 2)), y=[0, 1])
    with pytest.raises(ValueError, match="class indices"):
        SupervisedBanditEnv(X=np.zeros((2, 2)), y=[0, 5], class_names=["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        SupervisedBanditEnv(X=np.array([[np.nan, 1.0], [0.0, 1.0]]), y=[0, 1])
    with pytest.raises(ValueError, match="unknown dataset"):
        SupervisedBanditEnv("mnist")
