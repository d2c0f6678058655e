"""banditrec's OPE against obp's on the Open Bandit Dataset sample that obp ships.

    python bench/bench_obd.py [--runs 30] [--n-sim 1000000]

obp's published protocol (examples/obd/evaluate_off_policy_estimators.py, whose README
reports DM 0.157 and DR 0.292 with `--n_runs 30 --base_model logistic_regression
--evaluation_policy bts --behavior_policy random --campaign all`): logs of the uniform random
policy, campaign "all" (10,000 rows, 80 actions, 3 positions); the target is the Bernoulli
Thompson sampling policy ZOZOTOWN ran (`BernoulliTS(is_zozotown_prior=True,
random_state=12345)`, `compute_batch_action_dist(n_sim=1000000)`); the ground truth is the
on-policy value of the BTS logs; each of `--runs` bootstrap resamples of the log
(`sample_bootstrap_bandit_feedback(random_state=b)`) is evaluated, obp's reward model being
`RegressionModel(LogisticRegression(C=100, max_iter=10000, random_state=12345))` with
3-fold cross-fitting; the metric is the relative error |V̂ − V| / V, averaged over runs.
Switch-DR and DR-OS are tuned by SLOPE over τ, λ ∈ {10, 50, …, 10000, ∞} in obp.

banditrec reads each resample with `replay.from_obp`, the target with `obp_target`, and
fits its own cross-fitted reward models: `cross_fit(data, seed=b)` (default settings) for
DM, Switch-DR and DR-OS, and `cross_fit(data, seed=b, weighting="mrdr", pi_e=target)` (More
Robust DR weights) for DR and SNDR, as `counterfactual` does; the two sides share data and
target, nothing else. obp's DR with its own mrdr reward model is printed for the record. Prints both, per estimator, and the data-
quality report and reward-model calibration banditrec gives with the estimate.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from banditrec.replay import cross_fit, evaluate, from_obp, obp_target, quality_report

SEED = 12345


def obd_dataset_class() -> Any:
    """obp's `OpenBanditDataset`, with its default preprocessing written so that it runs on
    the pandas this project installs (obp 0.5.7 passes `columns=` and `axis=` together,
    which pandas ≥ 3 rejects); the features are the same."""
    import pandas as pd
    from obp.dataset import OpenBanditDataset
    from sklearn.preprocessing import LabelEncoder

    class OBD(OpenBanditDataset):
        def pre_process(self) -> None:
            user_cols = self.data.columns.str.contains("user_feature")
            self.context = pd.get_dummies(self.data.loc[:, user_cols], drop_first=True).values
            item_feature_0 = self.item_context["item_feature_0"].to_frame()
            item_feature_cat = self.item_context.drop(columns=["item_id", "item_feature_0"]).apply(
                LabelEncoder().fit_transform
            )
            self.action_context = pd.concat([item_feature_cat, item_feature_0], axis=1).values

    return OBD


BANDITREC_METHODS = ("ips", "snips", "dm", "dr", "sndr", "switch_dr", "dr_os")
OBP_NAMES = {
    "ipw": "ips",
    "snipw": "snips",
    "dm": "dm",
    "dr": "dr",
    "sndr": "sndr",
    "switch-dr": "switch_dr",
    "dr-os": "dr_os",
}


@dataclass
class Protocol:
    """obp's examples/obd inputs: the log (resampled per run), the target, the truth."""

    dataset: Any
    action_dist: np.ndarray
    """(1, n_actions, len_list): BTS does not depend on the context."""
    truth: float

    def feedback(self, run: int) -> dict[str, Any]:
        return self.dataset.sample_bootstrap_bandit_feedback(random_state=run)

    def target(self, n: int) -> np.ndarray:
        return np.repeat(self.action_dist, n, axis=0)


def obd_protocol(n_sim: int = 1_000_000) -> Protocol:
    from obp.policy import BernoulliTS

    logging.getLogger("obp").setLevel(logging.ERROR)
    obd = obd_dataset_class()
    dataset = obd(behavior_policy="random", campaign="all")
    policy = BernoulliTS(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        is_zozotown_prior=True,
        campaign="all",
        random_state=SEED,
    )
    action_dist = policy.compute_batch_action_dist(n_sim=n_sim)
    truth = obd.calc_on_policy_policy_value_estimate(behavior_policy="bts", campaign="all")
    return Protocol(dataset, action_dist, float(truth))


def obp_errors(protocol: Protocol, run: int) -> dict[str, float]:
    """obp's own relative errors on resample `run` (its published example, one run)."""
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        DoublyRobustWithShrinkageTuning,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        RegressionModel,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
        SwitchDoublyRobustTuning,
    )
    from sklearn.linear_model import LogisticRegression

    feedback = protocol.feedback(run)
    dataset = protocol.dataset
    regression = RegressionModel(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        action_context=dataset.action_context,
        base_model=LogisticRegression(C=100, max_iter=10000, random_state=SEED),
    )
    inputs = {k: feedback[k] for k in ("context", "action", "reward", "position", "pscore")}
    q_hat = regression.fit_predict(**inputs, n_folds=3, random_state=SEED)
    lambdas = [10, 50, 100, 500, 1000, 5000, 10000, np.inf]
    ope = OffPolicyEvaluation(
        bandit_feedback=feedback,
        ope_estimators=[
            DirectMethod(),
            InverseProbabilityWeighting(),
            SelfNormalizedInverseProbabilityWeighting(),
            DoublyRobust(),
            SelfNormalizedDoublyRobust(),
            SwitchDoublyRobustTuning(lambdas=lambdas),
            DoublyRobustWithShrinkageTuning(lambdas=lambdas),
        ],
    )
    relative = ope.evaluate_performance_of_estimators(
        ground_truth_policy_value=protocol.truth,
        action_dist=protocol.target(feedback["n_rounds"]),
        estimated_rewards_by_reg_model=q_hat,
        metric="relative-ee",
    )
    errors = {OBP_NAMES[k]: float(v) for k, v in relative.items()}
    # for the record: obp's DR with its More Robust DR reward model (fitting_method="mrdr")
    mrdr = dataclasses.replace(regression, fitting_method="mrdr")
    target = protocol.target(feedback["n_rounds"])
    q_mrdr = mrdr.fit_predict(**inputs, action_dist=target, n_folds=3, random_state=SEED)
    dr = DoublyRobust().estimate_policy_value(
        reward=feedback["reward"],
        action=feedback["action"],
        position=feedback["position"],
        pscore=feedback["pscore"],
        action_dist=target,
        estimated_rewards_by_reg_model=q_mrdr,
    )
    errors["dr (mrdr model)"] = abs(dr - protocol.truth) / protocol.truth
    return errors


def banditrec_run(protocol: Protocol, run: int) -> tuple[dict[str, float], Any, Any, Any]:
    """banditrec's relative errors on resample `run` with its own reward model; and the
    log, the estimator input and the reward-model fit (for the reports)."""
    data = from_obp(protocol.feedback(run))
    pi_e = obp_target(data, protocol.target(data.n))
    fit = cross_fit(data, seed=run)
    fit_dr = cross_fit(data, seed=run, weighting="mrdr", pi_e=pi_e)
    ope = data.ope_data(pi_e, fit.q_hat, fit_dr.q_hat)
    estimates = evaluate(ope, BANDITREC_METHODS)
    errors = {k: abs(e.value - protocol.truth) / protocol.truth for k, e in estimates.items()}
    return errors, data, ope, fit


def _line(label: str, errors: dict[str, float]) -> str:
    return f"{label:<28}" + "".join(f"{errors.get(m, math.nan):>10.3f}" for m in BANDITREC_METHODS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--n-sim", type=int, default=1_000_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    protocol = obd_protocol(args.n_sim)
    print(
        f"OBD sample (obp's), random → Bernoulli TS, campaign all; ground truth "
        f"{protocol.truth:.6f}; mean relative error over {args.runs} bootstrap runs"
    )
    ours, theirs, seconds = [], [], [0.0, 0.0]
    for run in tqdm(range(args.runs), desc="runs"):
        start = time.perf_counter()
        theirs.append(obp_errors(protocol, run))
        seconds[0] += time.perf_counter() - start
        start = time.perf_counter()
        errors, data, ope, fit = banditrec_run(protocol, run)
        ours.append(errors)
        seconds[1] += time.perf_counter() - start
    print(f"{'':<28}" + "".join(f"{m:>10}" for m in BANDITREC_METHODS))
    print(
        _line("obp 0.5.7", {m: float(np.mean([r[m] for r in theirs])) for m in OBP_NAMES.values()})
    )
    print(_line("banditrec", {m: float(np.mean([r[m] for r in ours])) for m in ours[0]}))
    print(
        _line(
            "obp published (README)",
            {
                "dm": 0.156876,
                "ips": 0.311082,
                "snips": 0.311795,
                "dr": 0.292464,
                "sndr": 0.302407,
                "switch_dr": 0.258410,
                "dr_os": 0.159520,
            },
        )
    )
    print(
        "obp DR with its mrdr reward model (RegressionModel(fitting_method='mrdr')): "
        f"{np.mean([r['dr (mrdr model)'] for r in theirs]):.3f}"
    )
    print(
        f"seconds per run (reward model + estimators): obp {seconds[0] / args.runs:.2f}, banditrec {seconds[1] / args.runs:.2f}"
    )
    print(
        f"last run — reward model: {fit.kind} on {fit.features}; calibration {fit.calibration(data).to_dict()}"
    )
    print(f"last run — {quality_report(ope, data).text()}")


if __name__ == "__main__":
    main()
