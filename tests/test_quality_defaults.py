"""The default VW app learns better than VW's own ε-greedy run on the same streams: a small
version of bench/bench_quality.py (the Contextual Bandit Bake-off protocol), same code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_quality.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("dataset", "shuffles"), [("iris", 3), ("wine", 3)])
def test_the_default_beats_vw_epsilon_greedy_on_the_same_streams(
    bench, dataset: str, shuffles: int
) -> None:
    (problem,) = bench.problems([dataset])
    epsilon = bench.VW_ANCHORS["VW ε-greedy 0.05"]
    ours = [bench.run_banditrec(problem, {}, seed) for seed in range(shuffles)]
    vw = [bench.run_vw(problem, epsilon, seed) for seed in range(shuffles)]
    assert np.mean(ours) < np.mean(vw), (ours, vw)
    flat = bench.run_banditrec(problem, {"interactions": []}, 0)  # the old default: no crosses
    assert flat > max(ours)
