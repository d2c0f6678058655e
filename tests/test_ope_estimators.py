"""Estimators against hand-computed references, intervals, multi-slot, input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from banditrec.replay import (
    DROS,
    ClippedIPS,
    LoggedBandit,
    OPEData,
    SwitchDR,
    clipped_ips,
    dm,
    dr,
    dr_os,
    evaluate,
    ips,
    sndr,
    snips,
    summarize,
    switch_dr,
    weight_diagnostics,
)
from banditrec.replay.intervals import _POISSON_TABLE, bernstein_interval, z_value
from banditrec.replay.summary import Terms

# Four logged decisions over three actions (see the numbers worked out in each test).
PI_B = np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [0.2, 0.2, 0.6]])
ACTION = np.array([0, 1, 2, 0])
REWARD = np.array([1.0, 0.0, 1.0, 0.5])
PI_E = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.4, 0.6], [0.1, 0.1, 0.8]])
Q_HAT = np.array([[0.8, 0.2, 0.4], [0.6, 0.3, 0.1], [0.1, 0.5, 0.7], [0.3, 0.3, 0.9]])


@pytest.fixture
def tiny() -> OPEData:
    return OPEData(REWARD, ACTION, PI_B[np.arange(4), ACTION], PI_E, Q_HAT)


def by_formula(pi_b, action, reward, pi_e, q_hat):
    """IPS, SNIPS, DM, DR written out row by row."""
    n = len(reward)
    w = [pi_e[i][action[i]] / pi_b[i][action[i]] for i in range(n)]
    ips_value = sum(w[i] * reward[i] for i in range(n)) / n
    snips_value = sum(w[i] * reward[i] for i in range(n)) / sum(w)
    dm_rows = [sum(pi_e[i][a] * q_hat[i][a] for a in range(len(pi_e[i]))) for i in range(n)]
    dm_value = sum(dm_rows) / n
    dr_value = dm_value + sum(w[i] * (reward[i] - q_hat[i][action[i]]) for i in range(n)) / n
    return ips_value, snips_value, dm_value, dr_value


def test_ips_snips_dm_dr_equal_the_formulas_and_the_hand_computed_numbers(tiny):
    # w = 2, 2, 1, 0.5;  w·r = 2, 0, 1, 0.25
    # IPS = 3.25 / 4;  SNIPS = 3.25 / 5.5
    # DM rows 0.8, 0.45, 0.62, 0.78 → 2.65 / 4;  DR adds (0.4 − 0.6 + 0.3 + 0.1) / 4
    expected = (0.8125, 3.25 / 5.5, 0.6625, 0.7125)
    assert by_formula(PI_B, ACTION, REWARD, PI_E, Q_HAT) == pytest.approx(expected)
    got = (ips(tiny).value, snips(tiny).value, dm(tiny).value, dr(tiny).value)
    assert got == pytest.approx(expected, rel=1e-12)


def test_variants_equal_their_formulas(tiny):
    # clipped at 1.5: min(w, 1.5)·r = 1.5, 0, 1, 0.25
    assert clipped_ips(tiny, max_weight=1.5).value == pytest.approx(2.75 / 4)
    # SNDR = DM + Σ w (r − q̂) / Σ w
    assert sndr(tiny).value == pytest.approx(0.6625 + 0.2 / 5.5)
    # Switch-DR at τ = 1.5 keeps the corrections of rows 2 and 3 only: 0.3 + 0.1
    assert switch_dr(tiny, tau=1.5).value == pytest.approx(0.6625 + 0.4 / 4)
    # DR-OS at λ = 4: shrunk weights 1, 1, 0.8, 2/4.25
    corrections = 0.2 - 0.3 + 0.8 * 0.3 + (2 / 4.25) * 0.2
    assert dr_os(tiny, lambda_=4.0).value == pytest.approx(0.6625 + corrections / 4)
    # huge thresholds make the variants their plain versions
    assert ClippedIPS(1e9).estimate(tiny).value == pytest.approx(ips(tiny).value)
    assert SwitchDR(1e9).estimate(tiny).value == pytest.approx(dr(tiny).value)
    assert DROS(1e12).estimate(tiny).value == pytest.approx(dr(tiny).value)


def test_dr_and_sndr_read_the_model_fitted_for_them_and_the_rest_q_hat(tiny):
    q_dr = np.full_like(Q_HAT, 0.5)
    both = OPEData(REWARD, ACTION, PI_B[np.arange(4), ACTION], PI_E, Q_HAT, q_hat_dr=q_dr)
    flat = OPEData(REWARD, ACTION, PI_B[np.arange(4), ACTION], PI_E, q_dr)
    # DR with q̂ = 0.5 everywhere: 0.5 + mean(w (r − 0.5)) = 0.5 + (1 − 1 + 0.5 + 0) / 4
    assert dr(both).value == pytest.approx(0.625) == pytest.approx(dr(flat).value)
    assert sndr(both).value == pytest.approx(sndr(flat).value)
    for estimate in (dm, lambda d: switch_dr(d, tau=1.5), lambda d: dr_os(d, lambda_=4.0)):
        assert estimate(both).value == pytest.approx(estimate(tiny).value)
    with pytest.raises(ValueError, match="q_hat_dr is given without q_hat"):
        OPEData(REWARD, ACTION, np.full(4, 0.5), PI_E, q_hat_dr=q_dr)


def test_standard_errors_and_normal_interval_by_formula(tiny):
    terms = np.array([2.0, 0.0, 1.0, 0.25])
    se = terms.std(ddof=1) / 2.0  # √n = 2
    e = ips(tiny, alpha=0.1)
    assert e.stderr == pytest.approx(se)
    assert (e.ci_low, e.ci_high) == pytest.approx(
        (0.8125 - 1.644854 * se, 0.8125 + 1.644854 * se), rel=1e-5
    )
    # SNIPS: delta method, ψ_i = w_i (r_i − V) / mean(w)
    w = np.array([2.0, 2.0, 1.0, 0.5])
    v = 3.25 / 5.5
    psi = w * (REWARD - v) / w.mean()
    assert snips(tiny).stderr == pytest.approx(psi.std(ddof=1) / 2.0)
    assert e.method == "ips" and e.interval == "normal" and e.n == 4


def test_evaluate_runs_several_estimators_and_reports_weight_diagnostics(tiny):
    out = evaluate(tiny, ["ips", "snips", "dm", "dr", ClippedIPS(1.5)])
    assert list(out) == ["ips", "snips", "dm", "dr", "clipped_ips"]
    assert out["clipped_ips"].value == pytest.approx(0.6875)
    diag = weight_diagnostics(tiny)
    assert diag["mean_weight"] == pytest.approx(5.5 / 4)
    assert diag["max_weight"] == 2.0
    assert diag["ess"] == pytest.approx(5.5**2 / (4 + 4 + 1 + 0.25))


def test_poisson_bootstrap_weights_have_poisson_moments():
    assert _POISSON_TABLE.mean() == pytest.approx(1.0, abs=0.01)
    assert _POISSON_TABLE.var() / _POISSON_TABLE.mean() ** 2 == pytest.approx(1.0, abs=0.01)


def test_bootstrap_matches_normal_interval_on_a_large_smooth_sample():
    rng = np.random.default_rng(3)
    terms = {"mean": Terms(rng.normal(1.0, 2.0, size=50_000))}
    normal = summarize(terms)["mean"]
    boot = summarize(terms, interval="bootstrap", rng=1)["mean"]
    assert boot.ci_low < normal.value < boot.ci_high
    width_ratio = (boot.ci_high - boot.ci_low) / (normal.ci_high - normal.ci_low)
    assert 0.85 < width_ratio < 1.15
    # same seed, same replicates
    assert summarize(terms, interval="bootstrap", rng=1)["mean"] == boot


def test_interval_coverage_on_skewed_terms():
    """Nominal 95%: normal and bootstrap cover ≥ 90%, Bernstein (a bound) ≥ 95%."""
    rng = np.random.default_rng(11)
    truth = 0.3  # terms w·r: w = 4 with probability 1/4 (else 0), r ~ Bernoulli(0.3)
    covered = {"normal": 0, "bootstrap": 0, "bernstein": 0}
    reps = 200
    for rep in range(reps):
        w = 4.0 * (rng.random(400) < 0.25)
        r = (rng.random(400) < 0.3).astype(float)
        terms = {"t": Terms(w * r)}
        for kind in covered:
            e = summarize(terms, interval=kind, rng=rep, n_boot=200)["t"]
            covered[kind] += e.ci_low <= truth <= e.ci_high
    assert covered["normal"] / reps >= 0.9
    assert covered["bootstrap"] / reps >= 0.9
    assert covered["bernstein"] / reps >= 0.95


def test_bernstein_bound_is_wider_than_normal_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    x = rng.random(1000)
    lo, hi = bernstein_interval(x, 0.05, (0.0, 1.0))
    half_normal = z_value(0.05) * x.std(ddof=1) / math.sqrt(x.size)
    assert hi - lo > 2 * half_normal
    lo_big, hi_big = bernstein_interval(rng.random(100_000), 0.05, (0.0, 1.0))
    assert hi_big - lo_big < (hi - lo) / 5


# --- multi-slot ---------------------------------------------------------------------------


def two_slot_log() -> LoggedBandit:
    """Decision 0: slot A w = 2, r = 1; slot B w = 0.5, r = 0. Decision 1: A w = 1, r = 0; B w = 4, r = 1."""
    return LoggedBandit(
        action=[0, 0, 0, 0],
        reward=[1.0, 0.0, 0.0, 1.0],
        pscore=[0.5, 0.5, 0.5, 0.25],
        pi_b=[[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.25, 0.75]],
        n_offered=[2, 2, 2, 2],
        event_id=["d0", "d0", "d1", "d1"],
        slot=np.array([0, 1, 0, 1]),
        slot_names=["A", "B"],
        group=np.array([0, 0, 1, 1]),
    )


def test_multislot_estimators_by_hand():
    data = two_slot_log()
    pi_e = np.array([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])  # w = 2, 0.5, 1, 4
    ope = data.ope_data(pi_e)
    out = evaluate(ope, ["ips", "pseudo_inverse", "slate_ips", "snips"])
    assert out["ips"].value == pytest.approx((2 + 4) / 2)  # Σ_slots w r per decision, averaged
    assert out["pseudo_inverse"].value == pytest.approx(((2 + 0.5 - 1) * 1 + (1 + 4 - 1) * 1) / 2)
    assert out["slate_ips"].value == pytest.approx((2 * 0.5 * 1 + 1 * 4 * 1) / 2)
    # SNIPS per slot, summed: A: (2·1 + 1·0)/(2 + 1); B: (0.5·0 + 4·1)/(0.5 + 4)
    assert out["snips"].value == pytest.approx(2 / 3 + 4 / 4.5)
    assert out["ips"].n == 2  # decisions, not rows
    # truth on this log: the app's value sums its slots
    data.expected_reward = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert data.true_value(pi_e) == pytest.approx((1.0 + 0.75 + 0.5 + 1.0) / 2)


def test_multislot_estimators_are_unbiased_for_the_whole_app():
    """Three slots with additive rewards: each method's mean over logs is the app's value."""
    rng = np.random.default_rng(5)
    n_dec, n_slots, k = 1500, 3, 4
    q = rng.uniform(0.05, 0.6, size=(n_slots, k))
    pi_b_slot = rng.dirichlet(np.full(k, 3.0), size=n_slots) * 0.8 + 0.2 / k
    pi_e_slot = rng.dirichlet(np.full(k, 0.7), size=n_slots)
    truth = float((pi_e_slot * q).sum())
    estimates: dict[str, list[float]] = {"ips": [], "pseudo_inverse": [], "dr": [], "slate_ips": []}
    rows = n_dec * n_slots
    slot = np.tile(np.arange(n_slots), n_dec)
    group = np.repeat(np.arange(n_dec), n_slots)
    for _ in range(40):
        u = rng.random(rows)
        action = (u[:, None] > pi_b_slot[slot].cumsum(axis=1)).sum(axis=1).clip(max=k - 1)
        reward = (rng.random(rows) < q[slot, action]).astype(float)
        data = LoggedBandit(
            action=action,
            reward=reward,
            pscore=pi_b_slot[slot, action],
            pi_b=pi_b_slot[slot],
            n_offered=np.full(rows, k),
            event_id=[str(g) for g in group],
            slot=slot,
            slot_names=["a", "b", "c"],
            group=group,
        )
        q_hat = np.clip(q[slot] + rng.normal(0, 0.1, size=(rows, k)), 0, 1)
        out = evaluate(data.ope_data(pi_e_slot[slot], q_hat), list(estimates))
        for name in estimates:
            estimates[name].append(out[name].value)
    for name, values in estimates.items():
        v = np.asarray(values)
        assert abs(v.mean() - truth) < 4 * v.std(ddof=1) / math.sqrt(v.size) + 1e-3, name
    # the independent estimator is the most precise: it uses each slot's own weight
    assert (
        np.std(estimates["ips"])
        < np.std(estimates["pseudo_inverse"])
        < np.std(estimates["slate_ips"])
    )


# --- input validation -------------------------------------------------------------------


def test_bad_inputs_say_what_to_fix(tiny):
    with pytest.raises(ValueError, match=r"pscore must be in \(0, 1\]; row 1"):
        OPEData(REWARD, ACTION, np.array([0.5, 0.0, 0.6, 0.2]), PI_E)
    with pytest.raises(ValueError, match="pi_e rows must be probability distributions"):
        OPEData(REWARD, ACTION, np.full(4, 0.5), PI_E * 0.5)
    with pytest.raises(ValueError, match="outside pi_e's 3 columns"):
        OPEData(REWARD, np.array([0, 1, 3, 0]), np.full(4, 0.5), PI_E)
    with pytest.raises(ValueError, match="non-finite"):
        OPEData(np.array([1.0, np.nan, 0.0, 0.0]), ACTION, np.full(4, 0.5), PI_E)
    with pytest.raises(ValueError, match="needs a reward model"):
        dr(OPEData(REWARD, ACTION, np.full(4, 0.5), PI_E))
    with pytest.raises(ValueError, match="unknown estimator 'magic'"):
        evaluate(tiny, ["ips", "magic"])
    with pytest.raises(ValueError, match="interval must be one of"):
        ips(tiny, interval="exact")
    with pytest.raises(ValueError, match="max_weight must be positive"):
        ClippedIPS(0.0)
    with pytest.raises(ValueError, match=r"pscore .* differs from the logging pmf"):
        LoggedBandit(ACTION, REWARD, np.full(4, 0.9), PI_B, np.full(4, 3), ["a", "b", "c", "d"])
    data = LoggedBandit(
        ACTION, REWARD, PI_B[np.arange(4), ACTION], PI_B, np.full(4, 3), list("abcd")
    )
    with pytest.raises(ValueError, match="carries no features"):
        data.feature_set(0)
    with pytest.raises(ValueError, match="no ground truth"):
        data.true_value(PI_E)
