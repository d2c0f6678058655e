"""Slate OPE: the intervals cover the true value over seeds, in a simulated feed."""

from __future__ import annotations

import numpy as np
import pytest

from banditrec.replay.slates import SlateLog, estimate_slates

N_ITEMS, K = 8, 3
ATTRACTION = np.linspace(0.1, 0.8, N_ITEMS)
EXAMINE = 1.0 / np.arange(1, K + 1)  # position bias: position j is looked at with prob 1/j


def draw_slates(rng, scores, n):
    """Plackett–Luce (sequential softmax) slates via Gumbel top-k, with each position's
    conditional probability given the positions above."""
    keys = scores + rng.gumbel(size=(n, N_ITEMS))
    slates = np.argsort(-keys, axis=1)[:, :K]
    return slates, conditional(scores, slates)


def conditional(scores, slates):
    w = np.exp(scores)
    left = np.full(slates.shape[0], w.sum())
    out = np.empty(slates.shape)
    for j in range(K):
        out[:, j] = w[slates[:, j]] / left
        left = left - w[slates[:, j]]
    return out


def expected_reward(slates):
    return ATTRACTION[slates] * EXAMINE


def model_terms(target_scores, slates):
    """An imperfect reward model (10 % low) and its value under the target per position."""
    q = 0.9 * expected_reward(slates)
    w = np.exp(target_scores)
    v = np.empty(slates.shape)
    chosen = np.zeros((slates.shape[0], N_ITEMS), dtype=bool)
    for j in range(K):
        weights = np.where(chosen, 0.0, w)
        pmf = weights / weights.sum(axis=1, keepdims=True)
        v[:, j] = 0.9 * EXAMINE[j] * (pmf @ ATTRACTION)
        chosen[np.arange(slates.shape[0]), slates[:, j]] = True
    return q, v


LOGGING = np.zeros(N_ITEMS)  # uniform
TARGET = 3.0 * ATTRACTION  # prefers attractive items


def true_value():
    rng = np.random.default_rng(123)
    slates, _ = draw_slates(rng, TARGET, 400_000)
    return float(expected_reward(slates).sum(axis=1).mean())


@pytest.mark.parametrize("method", ["cascade_ips", "cascade_dr"])
def test_normal_intervals_cover_the_true_slate_value_over_seeds(method):
    truth = true_value()
    covered, widths = 0, []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        slates, pscore = draw_slates(rng, LOGGING, 3000)
        reward = (rng.random(slates.shape) < expected_reward(slates)).astype(float)
        q, v = model_terms(TARGET, slates)
        log = SlateLog(pscore, conditional(TARGET, slates), reward, q, v)
        report = estimate_slates(log, method)
        est = report.estimate
        covered += est.ci_low <= truth <= est.ci_high
        widths.append(est.ci_high - est.ci_low)
        assert report.per_position.shape == (K,) and (report.ess > 0).all()
    assert covered / 60 >= 0.88  # nominal 95 %
    assert np.mean(widths) < 0.2 * truth


def test_dr_is_tighter_than_ips_and_the_logging_value_is_recovered():
    rng = np.random.default_rng(7)
    slates, pscore = draw_slates(rng, LOGGING, 20_000)
    reward = (rng.random(slates.shape) < expected_reward(slates)).astype(float)
    q, v = model_terms(TARGET, slates)
    log = SlateLog(pscore, conditional(TARGET, slates), reward, q, v)
    ips = estimate_slates(log, "cascade_ips").estimate
    dr = estimate_slates(log, "cascade_dr").estimate
    assert dr.stderr < ips.stderr
    same = estimate_slates(SlateLog(pscore, pscore, reward), "cascade_ips")
    assert same.estimate.value == pytest.approx(reward.sum(axis=1).mean())
    assert same.ess == pytest.approx(np.full(K, 20_000.0))


def test_bad_arrays_say_what_to_fix():
    ones = np.ones((4, 2))
    with pytest.raises(ValueError, match="pscore"):
        SlateLog(ones * 0.0, ones, ones)
    with pytest.raises(ValueError, match="shape"):
        SlateLog(ones, np.ones((4, 3)), ones)
    with pytest.raises(ValueError, match="unknown slate estimator"):
        estimate_slates(SlateLog(ones, ones, ones), "nope")
