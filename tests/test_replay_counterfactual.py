"""Counterfactual training: progressive validation, the recommendation rule, the report."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

import banditrec.envs  # noqa: F401  (registers banditrec/… envs)
from banditrec.config import AppConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.features import Interaction
from banditrec.replay import (
    Candidate,
    Estimate,
    counterfactual,
    cross_fit,
    evaluate,
    make_candidate,
    simulate_log,
    target_pmfs,
)
from banditrec.replay.counterfactual import LOGGED, CandidateResult, recommend

GREEDY = {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.02}, "interactions": ["xl"]}


@pytest.fixture(scope="module")
def iris_log():
    env = gym.make("banditrec/Iris-v0")
    env.reset(seed=1)
    logger = DecisionEngine.from_config({"policy": {"kind": "uniform"}})
    return simulate_log(env, logger, 1500, rng=2)


def test_each_row_is_decided_by_a_model_that_saw_only_earlier_rows(iris_log):
    log = iris_log.take(np.arange(30))
    config = AppConfig(policy=GREEDY)
    pmfs = target_pmfs(DecisionEngine(config), log, learn=True)
    shadow = DecisionEngine(config)
    for i in range(log.n):
        x = log.feature_set(i)
        np.testing.assert_allclose(pmfs[i], shadow.pmf(x, log.seed(config.seed, i)))
        shadow.learn(Interaction(x, int(log.action[i]), float(log.pscore[i]), float(log.reward[i])))
    # frozen evaluation never learns: every row sees the untrained model
    frozen = target_pmfs(DecisionEngine(config), log, learn=False)
    np.testing.assert_allclose(frozen, np.tile(frozen[0], (log.n, 1)))


def test_report_ranks_recommends_tables_and_plots(iris_log, tmp_path):
    candidates = [
        make_candidate("greedy", GREEDY),
        make_candidate("uniform", {"kind": "uniform"}),
        make_candidate(
            "app config",
            {"name": "iris", "policy": {**GREEDY, "explorer": {"type": "softmax", "lambda": 5}}},
        ),
    ]
    report = counterfactual(
        iris_log, candidates, methods=["ips", "snips", "dr"], interval="bootstrap"
    )
    assert report.current == LOGGED and report.primary == "dr"
    values = [r.estimates["dr"].value for r in report.results]
    assert values == sorted(values, reverse=True)
    assert report.results[-1].name == "uniform"
    assert report.recommendation in ("greedy", "app config")
    assert report.best().estimates["dr"].ci_low > report.baseline.value
    table = report.table()
    for name in ("greedy", "uniform", "app config", f"{LOGGED} (current)", "recommendation:"):
        assert name in table
    png = report.plot(tmp_path / "report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    dumped = json.loads(json.dumps(report.to_dict()))
    assert dumped["recommendation"] == report.recommendation
    assert dumped["results"][0]["estimates"]["dr"]["interval"] == "bootstrap"
    assert (
        report.reward_model is not None and report.reward_model.q_hat.shape == iris_log.pi_b.shape
    )


def test_dr_reads_a_reward_model_fitted_for_each_candidate_and_dm_the_shared_one(iris_log):
    log = iris_log.take(np.arange(600))
    report = counterfactual(log, [make_candidate("greedy", GREEDY)], methods=["dm", "dr"])
    pi_e = target_pmfs(DecisionEngine(AppConfig(policy=GREEDY)), log, learn=True)
    fit = cross_fit(log)
    fit_dr = cross_fit(log, weighting="mrdr", pi_e=pi_e)
    expected = evaluate(log.ope_data(pi_e, fit.q_hat, fit_dr.q_hat), ["dm", "dr"])
    (result,) = report.results
    for name in ("dm", "dr"):
        assert result.estimates[name].value == pytest.approx(expected[name].value, rel=1e-9)
    unweighted = evaluate(log.ope_data(pi_e, fit.q_hat), ["dr"])["dr"].value
    assert result.estimates["dr"].value != pytest.approx(unweighted, rel=1e-9)
    # a reward model passed in is the one every estimator reads
    given = counterfactual(
        log, [make_candidate("greedy", GREEDY)], methods=["dr"], reward_model=fit
    )
    assert given.results[0].estimates["dr"].value == pytest.approx(unweighted, rel=1e-9)


def test_a_named_current_policy_is_the_baseline(iris_log):
    candidates = [make_candidate("greedy", GREEDY), make_candidate("uniform", {"kind": "uniform"})]
    report = counterfactual(iris_log, candidates, methods=["ips"], current="uniform")
    uniform = next(r for r in report.results if r.name == "uniform")
    assert report.baseline == uniform.estimates["ips"]
    assert report.recommendation == "greedy"


def _result(name: str, value: float, low: float) -> CandidateResult:
    e = Estimate(value, 0.01, low, 2 * value - low, "dr")
    return CandidateResult(name, AppConfig(), {"dr": e}, {"ess": 100.0}, 0.0)


def test_recommendation_needs_the_lower_bound_to_beat_the_current_estimate():
    baseline = Estimate(0.50, 0.01, 0.48, 0.52, "on_policy")
    sure = [_result("b", 0.56, 0.51)]
    assert recommend(sure, baseline, LOGGED, "dr")[0] == "b"
    unsure = [_result("b", 0.56, 0.49)]
    choice, reason = recommend(unsure, baseline, LOGGED, "dr")
    assert choice == LOGGED and "not better for sure" in reason
    assert recommend([_result("a", 0.6, 0.55)], baseline, "a", "dr")[0] == "a"


def test_bad_candidates_are_refused_with_a_reason(iris_log):
    with pytest.raises(ValueError, match="names must be unique"):
        counterfactual(iris_log, [Candidate("x", AppConfig()), Candidate("x", AppConfig())])
    with pytest.raises(ValueError, match="primary estimator 'dm'"):
        counterfactual(
            iris_log, [make_candidate("u", {"kind": "uniform"})], methods=["ips"], primary="dm"
        )
    with pytest.raises(ValueError, match="current policy 'prod'"):
        counterfactual(iris_log, [make_candidate("u", {"kind": "uniform"})], current="prod")
    with pytest.raises(ValidationError, match="epsilon"):
        make_candidate("bad", {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 3}})
