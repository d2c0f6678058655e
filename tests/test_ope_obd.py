"""Acceptance on real logs: the Open Bandit Dataset sample obp ships, in obp's published
protocol (bench/bench_obd.py runs it in full, side by side with obp's own estimators).

obp's examples/obd README reports, over 30 bootstrap runs with its logistic reward model,
relative errors of DM 0.157 and DR 0.292; over the 30 runs banditrec's own reward model
(one model per position here) gives DM 0.133, DR 0.297, Switch-DR 0.125, DR-OS 0.129
(BENCHMARKS.md: DR's 0.005 above the bar is within what the cross-fitting split alone
moves it, for obp's model as for banditrec's). Over the first 10 runs used here it gives
DM 0.16, DR 0.30, Switch-DR 0.16, DR-OS 0.16; this test holds that level.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("obp")

OBP_PUBLISHED = {"dm": 0.156876, "dr": 0.292464}
BOUND = {"dm": 0.17, "dr": 0.31, "switch_dr": 0.17, "dr_os": 0.17}
RUNS = 10


def bench_obd():
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_obd.py"
    spec = importlib.util.spec_from_file_location("bench_obd", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def protocol():
    bench = bench_obd()
    return bench, bench.obd_protocol(n_sim=100_000)


def test_model_based_estimates_stay_near_obps_published_errors(protocol):
    bench, p = protocol
    assert p.truth == pytest.approx(0.0042, abs=1e-4)  # the BTS logs' on-policy value
    runs = [bench.banditrec_run(p, run) for run in range(RUNS)]
    mean = {m: float(np.mean([errors[m] for errors, *_ in runs])) for m in BOUND}
    assert all(mean[m] <= BOUND[m] for m in BOUND), mean
    assert mean["dr_os"] < OBP_PUBLISHED["dm"] + 0.01 and mean["dr"] < OBP_PUBLISHED["dr"] + 0.02
    # every estimate comes with its report; here the log supports the target well
    _, data, ope, fit = runs[-1]
    assert fit.features == "context + action id, one model per slot"  # positions differ
    report = bench.quality_report(ope, data)
    assert report.n == data.n and report.gap_actions == [] and report.trustworthy
    assert fit.calibration(data).ece < data.reward.mean()
