"""banditrec's OPE against obp's on the Open Bandit Dataset sample that obp ships.

    python bench/bench_obd.py [--n-sim 100000] [--seeds 5]

obp's published quickstart protocol (examples/quickstart/obd.ipynb): logs of the uniform
random policy, campaign "all" (10,000 rows, 80 actions, 3 positions); the target is the
Bernoulli Thompson sampling policy ZOZOTOWN ran (`BernoulliTS(is_zozotown_prior=True,
random_state=12345)`, `compute_batch_action_dist(n_sim=100000)`); obp's reward model is
`RegressionModel(LogisticRegression(max_iter=1000, random_state=12345))` with 3-fold
cross-fitting (random_state=12345); the ground truth is the on-policy value of the BTS logs
(`calc_on_policy_policy_value_estimate("bts", "all")`); the metric is the relative
estimation error |V̂ − V| / V. banditrec reads the same `bandit_feedback` with
`replay.from_obp`, the same `action_dist` with `obp_target`, and fits its own cross-fitted
reward model (`cross_fit`, default settings, seeds 0..seeds−1 for its folds). Prints both,
and the data-quality report banditrec gives with the estimate.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from typing import Any

import numpy as np

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
            item_feature_cat = self.item_context.drop(
                columns=["item_id", "item_feature_0"]
            ).apply(LabelEncoder().fit_transform)
            self.action_context = pd.concat([item_feature_cat, item_feature_0], axis=1).values

    return OBD


def obd_protocol(n_sim: int = 100_000) -> dict[str, Any]:
    """The quickstart's inputs and obp's own estimates: bandit_feedback, action_dist, the
    ground truth and obp's relative errors per estimator."""
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        RegressionModel,
    )
    from obp.policy import BernoulliTS
    from sklearn.linear_model import LogisticRegression

    logging.getLogger("obp").setLevel(logging.ERROR)
    obd = obd_dataset_class()
    dataset = obd(behavior_policy="random", campaign="all")
    feedback = dataset.obtain_batch_bandit_feedback()
    policy = BernoulliTS(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        is_zozotown_prior=True,
        campaign="all",
        random_state=SEED,
    )
    action_dist = policy.compute_batch_action_dist(n_sim=n_sim, n_rounds=feedback["n_rounds"])
    start = time.perf_counter()
    regression = RegressionModel(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        action_context=dataset.action_context,
        base_model=LogisticRegression(max_iter=1000, random_state=SEED),
    )
    q_obp = regression.fit_predict(
        context=feedback["context"],
        action=feedback["action"],
        reward=feedback["reward"],
        position=feedback["position"],
        pscore=feedback["pscore"],
        n_folds=3,
        random_state=SEED,
    )
    ope = OffPolicyEvaluation(
        bandit_feedback=feedback,
        ope_estimators=[InverseProbabilityWeighting(), DirectMethod(), DoublyRobust()],
    )
    truth = obd.calc_on_policy_policy_value_estimate(behavior_policy="bts", campaign="all")
    relative = ope.evaluate_performance_of_estimators(
        ground_truth_policy_value=truth,
        action_dist=action_dist,
        estimated_rewards_by_reg_model=q_obp,
        metric="relative-ee",
    )
    return {
        "feedback": feedback,
        "action_dist": action_dist,
        "truth": float(truth),
        "obp": {"ips": relative["ipw"], "dm": relative["dm"], "dr": relative["dr"]},
        "obp_seconds": time.perf_counter() - start,
    }


def banditrec_errors(protocol: dict[str, Any], seed: int = 0) -> tuple[dict[str, float], Any]:
    """banditrec's relative errors on the protocol's data with its own reward model."""
    data = from_obp(protocol["feedback"])
    pi_e = obp_target(data, protocol["action_dist"])
    fit = cross_fit(data, seed=seed)
    ope = data.ope_data(pi_e, fit.q_hat)
    estimates = evaluate(ope, ["ips", "snips", "dm", "dr", "switch_dr", "dr_os"])
    truth = protocol["truth"]
    errors = {name: abs(e.value - truth) / truth for name, e in estimates.items()}
    return errors, (data, ope, fit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-sim", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    protocol = obd_protocol(args.n_sim)
    print(f"OBD sample, random → BTS, campaign all; ground truth {protocol['truth']:.6f}")
    print(f"obp 0.5.7 relative errors: " + ", ".join(f"{k} {v:.3f}" for k, v in protocol["obp"].items()))
    runs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        errors, (data, ope, fit) = banditrec_errors(protocol, seed)
        runs.append(errors)
        print(
            f"banditrec (folds seed {seed}): "
            + ", ".join(f"{k} {v:.3f}" for k, v in errors.items())
            + f"  [{time.perf_counter() - start:.2f} s]"
        )
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    print("banditrec mean over seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    print(f"reward model calibration (seed {args.seeds - 1}): {fit.calibration(data).to_dict()}")
    print(quality_report(ope, data).text())


if __name__ == "__main__":
    main()
