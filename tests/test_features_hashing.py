"""`FeatureSet.hashed` is part of every saved numpy model: its bins and values must not move.

The pinned vectors below were computed by the implementation before the layout plans (the
per-request Python loops); a change that alters any index, value or dtype fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from banditrec.config import LinUCBConfig
from banditrec.decision import features
from banditrec.decision.features import FeatureSet
from banditrec.policies.linear import LinUCBPolicy

X = float.fromhex

PINNED = [
    (
        {"user": {"age": 31, "country": "IN", "premium": True}, "time": {"hour": 0.5}},
        [("a", {"topic": {"sports": 1.0, "len": 2}}), ("b", {"topic": {"news": "x"}}), ("c", {})],
        7,
        [
            {
                0: X("0x1.71c253e2135dep-1"),
                1: X("0x1.08e6ebdb47302p-5"),
                2: X("0x1.6133e5245eeaep-6"),
                3: X("0x1.08e6ebdb47302p-5"),
                5: X("0x1.6133e5245eeaep-1"),
            },
            {
                0: X("0x1.610f260cc7f89p-5"),
                1: X("0x1.719bdbd561584p-1"),
                3: X("0x1.610f260cc7f89p-6"),
                4: X("0x1.08cb5c8995fa7p-5"),
                5: X("0x1.610f260cc7f89p-1"),
            },
            {
                0: X("0x1.fe71d260e3e81p-5"),
                1: X("0x1.7ed55dc8aaee1p-5"),
                5: X("0x1.fe71d260e3e81p-1"),
            },
        ],
    ),
    (
        {},
        [("x", {"f": {"g": 1}}), ("y", {"f": {"b": -2.5}})],
        5,
        [
            {
                0: X("0x1.279a74590331dp-1"),
                3: X("0x1.279a74590331dp-1"),
                4: X("0x1.279a74590331dp-1"),
            },
            {
                0: X("0x1.6482d37a5a3d2p-2"),
                2: X("-0x1.bda38858f0cc6p-1"),
                4: X("0x1.6482d37a5a3d2p-2"),
            },
        ],
    ),
    (
        {"ü": {"naïve": "日本", "n": 3}, "_skip": {"q": 1}},
        [("α", {"β": {"γ": 0.25}})],
        4,
        [
            {
                0: X("0x1.c245e61ae326cp-1"),
                1: X("0x1.89fd295786c1fp-2"),
                2: X("0x1.196bafd0cdf84p-2"),
                3: X("0x1.c245e61ae326cp-5"),
            }
        ],
    ),
    (
        {"user": {"age": 31, "country": "IN"}},
        [("a", {"topic": {"sports": 1.0}}), ("b", {})],
        1 << 20,
        [
            {
                0: X("0x1.753b702d39cbep-6"),
                304519: X("0x1.753b702d39cbep-6"),
                344442: X("0x1.753b702d39cbep-6"),
                599421: X("0x1.753b702d39cbep-6"),
                639344: X("0x1.753b702d39cbep-6"),
                707713: X("0x1.699194abcffd8p-1"),
                747636: X("0x1.699194abcffd8p-1"),
            },
            {
                0: X("0x1.07d8b7c63aadcp-5"),
                29895: X("0x1.07d8b7c63aadcp-5"),
                138187: X("0x1.ff33e41011b0ap-1"),
                783569: X("0x1.07d8b7c63aadcp-5"),
            },
        ],
    ),
]


def _expected(rows: list[dict[int, float]], dim: int) -> np.ndarray:
    out = np.zeros((len(rows), dim))
    for i, row in enumerate(rows):
        for j, v in row.items():
            out[i, j] = v
    return out


def _clear_caches() -> None:
    features._ENTRY_IDS.clear()
    features._ENTRY_HASHES.clear()
    features._PLANS.clear()


@pytest.mark.parametrize("case", range(len(PINNED)))
def test_hashed_vectors_are_pinned(case: int) -> None:
    context, actions, dim, rows = PINNED[case]
    expected = _expected(rows, dim)
    for fresh in (True, False):  # built from scratch, then from the cached plan
        if fresh:
            _clear_caches()
        got = FeatureSet.build(context, actions).hashed(dim)
        assert got.dtype == np.float64 and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()


def test_hashed_is_the_same_whatever_was_hashed_before() -> None:
    """Same bins and bit-equal values whether the layout is new or cached, in any dim."""
    rng = np.random.default_rng(7)

    def request() -> FeatureSet:
        context = {"u": {f"c{j}": float(rng.normal()) for j in range(5)} | {"k": "v"}}
        actions = [
            (f"a{i}", {"t": {f"f{j}": float(rng.normal()) for j in range(4)} | {"on": True}})
            for i in range(6)
        ]
        return FeatureSet.build(context, actions)

    for dim in (1, 3, 50, 4096):
        x = request()
        _clear_caches()
        cold = x.hashed(dim).copy()
        for _ in range(3):
            y = FeatureSet(x.context, x.actions, x.action_ids)
            assert y.hashed(dim).tobytes() == cold.tobytes()
        np.testing.assert_allclose(np.linalg.norm(cold, axis=1), 1.0)


def test_hashed_survives_the_id_cache_being_emptied_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another thread may empty the name cache between collecting ids and building a plan."""
    context, actions, dim, rows = PINNED[0]
    real_plan = features._plan
    calls = []

    def plan_after_eviction(layout: tuple[int, ...], k: int) -> np.ndarray:
        calls.append(layout)
        if len(calls) == 1:
            features._ENTRY_IDS.clear()
            features._ENTRY_HASHES.clear()
        return real_plan(layout, k)

    _clear_caches()
    monkeypatch.setattr(features, "_plan", plan_after_eviction)
    got = FeatureSet.build(context, actions).hashed(dim)
    assert len(calls) == 2
    assert got.tobytes() == _expected(rows, dim).tobytes()


def test_linucb_probabilities_are_its_pmf_as_floats() -> None:
    """The decision path's list and `pmf` agree exactly, ties (and NaN models) included."""
    policy = LinUCBPolicy(LinUCBConfig(dim=16))
    tie = FeatureSet.build({}, [("a", {}), ("b", {}), ("c", {})])
    assert policy.probabilities(tie, 0) == policy.pmf(tie, 0).tolist() == [1 / 3] * 3
    rng = np.random.default_rng(3)
    for i in range(50):
        x = FeatureSet.build(
            {"u": {"a": float(rng.normal())}},
            [(f"a{j}", {"f": {"g": float(rng.normal())}}) for j in range(4)],
        )
        assert policy.probabilities(x, i) == policy.pmf(x, i).tolist()
        policy.theta = rng.normal(size=16)
    policy.theta = np.full(16, np.nan)
    with np.errstate(invalid="ignore"):
        nan_pmf = policy.pmf(tie, 0).tolist()
        assert np.array_equal(policy.probabilities(tie, 0), nan_pmf, equal_nan=True)


def test_an_escaped_namespace_hashes_as_it_was_sent() -> None:
    """Decided on the request, learned from the log (where it is escaped): one vector."""
    sent = FeatureSet.build({"用户": {"城市": "北京"}}, [("a", {"é": {"x": 1}}), ("b", {})])
    logged = FeatureSet.from_dsjson_c(sent.dsjson_c(), sent.action_ids)
    assert "~用户" in logged.context and "~é" in logged.actions[0]
    fresh = FeatureSet.build({"用户": {"城市": "北京"}}, [("a", {"é": {"x": 1}}), ("b", {})])
    assert np.array_equal(fresh.hashed(64), logged.hashed(64))
