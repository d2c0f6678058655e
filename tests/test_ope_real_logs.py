"""OPE that holds on real logs: a calibrated reward model for rare rewards, obp interop both
ways (obp's own validation and estimators on banditrec's exports, obp's dicts and plain
tables imported), a data-quality report with every estimate, SLOPE-tuned Switch-DR / DR-OS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from banditrec.decision.engine import DecisionEngine
from banditrec.replay import (
    DROS,
    LoggedBandit,
    SwitchDR,
    cross_fit,
    evaluate,
    from_obp,
    from_records,
    from_table,
    obp_action_dist,
    obp_target,
    quality_report,
    slope,
    weight_quality,
)
from banditrec.replay.quality import MIN_ESS
from tests.test_replay_io import service_records

obp = pytest.importorskip("obp")


def rare_click_log(n: int = 20_000, k: int = 10, seed: int = 0) -> LoggedBandit:
    """A uniform log whose clicks are rare (≈ 0.5%) and depend on a dense context and the
    action."""
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(n, 5))
    theta = rng.normal(scale=0.4, size=5)
    offset = rng.normal(scale=0.6, size=k)
    truth = 1.0 / (1.0 + np.exp(-((context @ theta)[:, None] + offset - 5.5)))
    action = rng.integers(0, k, size=n)
    reward = (rng.random(n) < truth[np.arange(n), action]).astype(float)
    return LoggedBandit(
        action=action,
        reward=reward,
        pscore=np.full(n, 1.0 / k),
        pi_b=np.full((n, k), 1.0 / k),
        n_offered=np.full(n, k),
        event_id=[str(i) for i in range(n)],
        expected_reward=truth,
        context=context,
    )


@pytest.mark.parametrize("kind", ["logistic", "ridge"])
def test_rare_rewards_are_predicted_at_their_rate_and_the_model_is_calibrated(kind):
    data = rare_click_log()
    fit = cross_fit(data, kind=kind)
    rate = data.reward.mean()
    assert 0.002 < rate < 0.01
    # the unpenalized intercept keeps predictions at the observed rate, not near 0.5 or 0
    assert fit.q_hat.mean() == pytest.approx(data.expected_reward.mean(), rel=0.25)
    calibration = fit.calibration(data)
    assert sum(calibration.counts) == data.n and len(calibration.counts) == 10
    if kind == "ridge":  # a linear model of a rare 0/1 reward clips at 0: not calibrated
        return
    assert calibration.ece < 0.5 * rate and calibration.relative_ece < 0.5
    # and DM is then close to the truth of a target policy
    pi_e = np.eye(10)[np.argmax(data.expected_reward, axis=1)]
    dm = evaluate(data.ope_data(pi_e, fit.q_hat), ["dm"])["dm"].value
    assert dm == pytest.approx(data.true_value(pi_e), rel=0.3)


def three_slot_log(n: int = 600) -> LoggedBandit:
    import gymnasium as gym

    import banditrec.envs  # noqa: F401

    env = gym.make("banditrec/Channel-v0")
    env.reset(seed=0)
    slots = ("top", "middle", "bottom")
    config = {
        "name": "three",
        "slots": [
            {"name": s, "policy": {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.5}}}
            for s in slots
        ],
    }
    records, _ = service_records(env, DecisionEngine.from_config(config), n, seed=3, slots=slots)
    return from_records(records)


def test_obps_own_evaluation_accepts_an_export_of_a_three_position_log():
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
    )

    data = three_slot_log()
    assert data.is_multislot and len(data.slot_names) == 3
    feedback = data.to_obp_bandit_feedback(context_dim=16)
    assert feedback["pi_b"].shape[2] == 3
    np.testing.assert_allclose(feedback["pi_b"].sum(axis=1), 1.0)
    pi_e = np.where(data.mask, 0.1, 0.0)
    pi_e[:, 0] += 1.0 - pi_e.sum(axis=1)
    q_hat = cross_fit(data, kind="ridge").q_hat
    ours = evaluate(data.ope_data(pi_e, q_hat), ["ips", "dm", "dr"])
    ope = OffPolicyEvaluation(
        bandit_feedback=feedback,
        ope_estimators=[InverseProbabilityWeighting(), DirectMethod(), DoublyRobust()],
    )
    theirs = ope.estimate_policy_values(
        action_dist=obp_action_dist(data, pi_e),
        estimated_rewards_by_reg_model=obp_action_dist(data, q_hat),
    )
    # obp averages over rows; a multi-slot app's value is the sum over its 3 slots
    for ours_name, obp_name in (("ips", "ipw"), ("dm", "dm"), ("dr", "dr")):
        assert 3 * theirs[obp_name] == pytest.approx(ours[ours_name].value, rel=1e-9)
    # and back: the export re-imported estimates the same
    again = from_obp(feedback)
    assert again.n == data.n and again.is_multislot
    back = evaluate(again.ope_data(obp_target(again, obp_action_dist(data, pi_e))), ["ips"])
    assert 3 * back["ips"].value == pytest.approx(ours["ips"].value, rel=1e-9)


def test_obp_synthetic_feedback_imports_with_its_truth_and_estimates_like_obp():
    from obp.dataset import SyntheticBanditDataset, logistic_reward_function
    from obp.ope import InverseProbabilityWeighting, OffPolicyEvaluation

    dataset = SyntheticBanditDataset(
        n_actions=5, dim_context=3, reward_function=logistic_reward_function, random_state=1
    )
    feedback = dataset.obtain_batch_bandit_feedback(n_rounds=3000)
    data = from_obp(feedback)
    assert data.n == 3000 and data.n_actions == 5 and not data.is_multislot
    np.testing.assert_allclose(data.pi_b, feedback["pi_b"][:, :, 0])
    action_dist = np.tile(np.array([0.6, 0.1, 0.1, 0.1, 0.1])[None, :, None], (3000, 1, 1))
    pi_e = obp_target(data, action_dist)
    ope = OffPolicyEvaluation(
        bandit_feedback=feedback, ope_estimators=[InverseProbabilityWeighting()]
    )
    theirs = ope.estimate_policy_values(action_dist=action_dist)["ipw"]
    assert evaluate(data.ope_data(pi_e), ["ips"])["ips"].value == pytest.approx(theirs, rel=1e-12)
    assert data.true_value(pi_e) == pytest.approx(
        dataset.calc_ground_truth_policy_value(feedback["expected_reward"], action_dist)
    )
    # the dense context becomes features, so a candidate policy runs on the imported log
    engine = DecisionEngine.from_config({"policy": {"kind": "uniform"}})
    assert engine.pmf(data.feature_set(0), data.seed(0, 0)).shape == (5,)


def test_a_table_imports_the_same_from_a_dataframe_csv_and_parquet(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "action": rng.choice(["a", "b", "c"], size=n),
            "probability": np.full(n, 1 / 3),
            "reward": rng.random(n),
            "position": rng.integers(0, 2, size=n),
            "age": rng.normal(size=n),
            "income": rng.normal(size=n),
        }
    )
    from_df = from_table(df)
    df.to_csv(tmp_path / "log.csv", index=False)
    df.to_parquet(tmp_path / "log.parquet")
    for other in (from_table(tmp_path / "log.csv"), from_table(tmp_path / "log.parquet")):
        np.testing.assert_array_equal(other.action, from_df.action)
        np.testing.assert_allclose(other.context, from_df.context)
    assert from_df.context.shape == (n, 2) and from_df.n_actions == 3
    assert from_df.is_multislot and from_df.slot_names == ["0", "1"]
    assert from_df.ids(0) == ["a", "b", "c"] or set(from_df.ids(0)) == {"a", "b", "c"}
    vectors = pd.DataFrame(
        {**df[["action", "probability", "reward"]], "context": list(from_df.context)}
    )
    np.testing.assert_allclose(from_table(vectors).context, from_df.context)
    with pytest.raises(ValueError, match="no column"):
        from_table(df.drop(columns="probability"))
    with pytest.raises(ValueError, match=r"propensity 1\.5 is not in \(0, 1\]"):
        from_table(df.assign(probability=1.5))


def test_a_weak_estimate_says_so():
    weights = np.concatenate([np.zeros(990), np.full(10, 100.0)])
    weak = weight_quality(weights, units="trajectories")
    assert weak.ess == pytest.approx(10.0) and weak.ess < MIN_ESS
    assert not weak.trustworthy
    assert "too weak to trust" in weak.text() and "WARNING" in weak.text()
    fine = weight_quality(np.random.default_rng(0).uniform(0.5, 1.5, size=1000))
    assert fine.trustworthy and "WARNING" not in fine.text()


def test_support_gaps_name_the_actions_the_logger_never_showed():
    data = rare_click_log(n=500, k=4)
    never = data.action != 3
    data = data.take(np.flatnonzero(never))  # the log never shows action 3
    pi_e = np.tile([0.1, 0.1, 0.1, 0.7], (data.n, 1))
    report = quality_report(data.ope_data(pi_e), data)
    assert report.gap_actions == ["3"] and report.gap_mass == pytest.approx(0.7)
    assert any("never showed" in w for w in report.warnings)


def test_switch_dr_and_dr_os_choose_their_hyperparameter_from_the_data():
    assert slope([1.0, 1.1, 3.0], [0.5, 0.2, 0.1]) == 1
    assert slope([1.0, 1.0, 1.0], [0.5, 0.2, 0.1]) == 2
    data = rare_click_log(n=5000, k=10, seed=1)
    truth_model = data.expected_reward
    sharp = np.eye(10)[np.argmax(truth_model, axis=1)]
    ope = data.ope_data(sharp, truth_model)
    # every weight here is 0 or 10, so τ < 10 is DM and τ ≥ 10 is DR: with a grossly wrong
    # model DM is far off, and SLOPE keeps the corrections
    wrong = data.ope_data(sharp, np.full_like(truth_model, 0.5))
    assert SwitchDR().select(wrong) >= 10.0
    assert DROS().select(wrong) >= 1000.0
    assert SwitchDR().estimate(wrong).value == pytest.approx(evaluate(wrong, ["dr"])["dr"].value)
    assert SwitchDR(tau=5.0).select(ope) == 5.0
