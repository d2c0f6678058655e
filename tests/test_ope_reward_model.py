"""The cross-fitted reward model: no row is scored by a model trained on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import banditrec.envs  # noqa: F401  (registers banditrec/… envs)
from banditrec.decision.engine import DecisionEngine
from banditrec.replay import LoggedBandit, cross_fit, hashed, simulate_log
from banditrec.replay import reward_model as rm


@pytest.fixture(scope="module")
def channel_log() -> LoggedBandit:
    env = gym.make("banditrec/Channel-v0")
    env.reset(seed=2)
    return simulate_log(
        env, DecisionEngine.from_config({"policy": {"kind": "uniform"}}), 3000, rng=1
    )


def with_reward(data: LoggedBandit, row: int, value: float) -> LoggedBandit:
    changed = data.take(np.arange(data.n))
    changed.reward = data.reward.copy()
    changed.reward[row] = value
    changed.expected_reward = data.expected_reward
    return changed


@pytest.mark.parametrize("kind", ["ridge", "action_mean"])
def test_a_rows_own_reward_never_changes_its_prediction(channel_log, kind):
    base = cross_fit(channel_log, kind=kind, seed=3)
    folds = rm._folds(channel_log, 3, np.random.default_rng(3))
    changed = cross_fit(with_reward(channel_log, 0, 50.0), kind=kind, seed=3)
    np.testing.assert_allclose(changed.q_hat[0], base.q_hat[0])
    other_fold = folds != folds[0]
    assert not np.allclose(changed.q_hat[other_fold], base.q_hat[other_fold])


@pytest.mark.parametrize("weighting", ["iw", "mrdr"])
def test_weighted_fits_ignore_rows_the_target_never_plays(channel_log, weighting):
    """A row whose logged action the target gives no probability has weight 0 in an iw or
    mrdr fit: changing its reward changes no prediction (it does in the unweighted fit)."""
    pi_e = np.zeros_like(channel_log.pi_b)
    pi_e[:, 1] = 1.0
    row = int(np.flatnonzero(channel_log.action != 1)[0])
    changed_log = with_reward(channel_log, row, 50.0)
    base = cross_fit(channel_log, kind="ridge", seed=3, weighting=weighting, pi_e=pi_e)
    changed = cross_fit(changed_log, kind="ridge", seed=3, weighting=weighting, pi_e=pi_e)
    np.testing.assert_allclose(changed.q_hat, base.q_hat)
    unweighted = cross_fit(channel_log, kind="ridge", seed=3).q_hat
    assert not np.allclose(cross_fit(changed_log, kind="ridge", seed=3).q_hat, unweighted)
    # the rows it plays weigh by ρ (iw) or ρ(1 − p)/p (mrdr), normalized to mean 1
    weight = rm.fit_weights(channel_log, pi_e, weighting)
    rho = (channel_log.action == 1) / channel_log.pscore
    expected = rho if weighting == "iw" else rho * (1 - channel_log.pscore) / channel_log.pscore
    np.testing.assert_allclose(weight, expected * channel_log.n / expected.sum())


def test_the_model_learns_the_simulators_truth(channel_log):
    fit = cross_fit(channel_log, kind="ridge", dim=128)
    assert fit.features == "hashed" and fit.n_folds == 3
    per_action = cross_fit(channel_log, kind="action_mean")
    truth = channel_log.expected_reward
    error = np.abs(fit.q_hat - truth).mean()
    assert error < 0.8 * np.abs(per_action.q_hat - truth).mean()
    assert (
        np.abs(per_action.q_hat - truth).mean() < np.abs(channel_log.reward.mean() - truth).mean()
    )
    assert fit.featurize_seconds > 0 and fit.fit_seconds > 0


def test_large_designs_are_featurized_twice_instead_of_kept(channel_log, monkeypatch):
    kept = cross_fit(channel_log, kind="ridge", seed=1).q_hat
    monkeypatch.setattr(hashed, "_DESIGN_BUDGET_BYTES", 1024)
    streamed = cross_fit(channel_log, kind="ridge", seed=1).q_hat
    np.testing.assert_allclose(streamed, kept)


def test_reward_model_options_are_checked(channel_log):
    with pytest.raises(ValueError, match="needs rewards in"):
        cross_fit(channel_log, kind="logistic")
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fit(channel_log, n_folds=1)
    with pytest.raises(ValueError, match="no dense context"):
        cross_fit(channel_log, features="context")
    with pytest.raises(ValueError, match="needs the target policy's pmfs"):
        cross_fit(channel_log, weighting="mrdr")
    with pytest.raises(ValueError, match="unknown weighting"):
        cross_fit(channel_log, weighting="variance", pi_e=channel_log.pi_b)  # type: ignore[arg-type]


def test_positions_where_actions_do_differently_get_one_model_each():
    """Item a is clicked at position a % 3 far more than elsewhere: a model shared by the
    positions (a rate per position, an offset per item) cannot say so, one per position can."""
    from banditrec.replay import from_obp

    rng = np.random.default_rng(7)  # not cross_fit's seed: its folds would follow the actions
    n, n_actions = 6000, 20
    action = rng.integers(0, n_actions, n)
    position = rng.integers(0, 3, n)
    rate = np.where(action % 3 == position, 0.3, 0.02)
    feedback = {
        "n_actions": n_actions,
        "action": action,
        "position": position,
        "reward": (rng.random(n) < rate).astype(float),
        "pscore": np.full(n, 1 / n_actions),
        "context": rng.normal(size=(n, 5)),
    }
    data = from_obp(feedback)
    fit = cross_fit(data, seed=0)
    assert fit.features == "context + action id, one model per slot"
    q = fit.q_hat[np.arange(n), data.action]
    good = action % 3 == position
    assert q[good].mean() > 0.2 and q[~good].mean() < 0.06
    single = cross_fit(from_obp({**feedback, "position": None}), seed=0)
    assert single.features == "context + action id"
