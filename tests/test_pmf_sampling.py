"""pmf shaping and seeded draws: sums to one, floors hold, draws reproduce and follow the pmf."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditrec.decision.pmf import (
    apply_floor,
    floored,
    mix_uniform,
    mixed_uniform,
    normalize,
    normalized,
    ranking_order,
    sum_like_numpy,
)
from banditrec.decision.sampling import draw, event_seed, uniform01

pmfs = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=40).map(np.asarray)


@settings(max_examples=300, deadline=None)
@given(pmfs, st.floats(0.0, 0.2))
def test_floor_holds_and_pmf_sums_to_one(raw, floor):
    p = apply_floor(normalize(raw), floor)
    assert p.sum() == pytest.approx(1.0)
    assert p.min() >= min(floor, 1.0 / p.size) - 1e-12


def test_floor_is_minimal_and_keeps_order():
    p = np.array([0.9, 0.1, 0.0])
    out = apply_floor(p, 0.05)
    assert out[2] == pytest.approx(0.05)
    assert list(np.argsort(-out)) == [0, 1, 2]
    np.testing.assert_allclose(apply_floor(np.array([0.5, 0.3, 0.2]), 0.05), [0.5, 0.3, 0.2])


def test_floor_above_uniform_caps_at_uniform():
    np.testing.assert_allclose(apply_floor(np.array([1.0, 0.0, 0.0, 0.0]), 0.9), [0.25] * 4)


def test_normalize_repairs_degenerate_pmfs():
    np.testing.assert_allclose(normalize(np.array([1.0, 1.0, 1.0, 1.0])), [0.25] * 4)
    np.testing.assert_allclose(normalize(np.array([0.0, 0.0])), [0.5, 0.5])
    np.testing.assert_allclose(normalize(np.array([np.nan, 1.0])), [0.0, 1.0])


def test_mix_uniform():
    np.testing.assert_allclose(mix_uniform(np.array([1.0, 0.0]), 0.2), [0.9, 0.1])


def test_ranking_puts_chosen_first_then_by_probability():
    assert ranking_order(np.array([0.1, 0.6, 0.3]), 2) == [2, 1, 0]


# The decision path shapes pmfs on lists of floats; served probabilities and logged
# records must be bit-for-bit what the numpy forms give, so equality here is exact.
raw_pmfs = st.lists(
    st.one_of(
        st.floats(0.0, 1.0),
        st.floats(1e-300, 1e300),
        st.sampled_from([0.0, -0.0, -1.0, float("nan"), float("inf"), 1e-17, 1.0 / 3.0]),
    ),
    min_size=1,
    max_size=300,
)


def test_sum_like_numpy_is_numpys_sum_bit_for_bit():
    rng = np.random.default_rng(0)
    for n in [*range(1, 140), 255, 256, 257, 1000]:
        for scale in (1.0, 1e-3, 1e6):
            a = rng.random(n) ** 3 * scale
            assert sum_like_numpy(a.tolist()) == float(a.sum()), n


@settings(max_examples=500, deadline=None)
@given(raw_pmfs, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_list_forms_equal_the_numpy_forms_bit_for_bit(raw, epsilon, floor):
    def same(q: list[float], p: np.ndarray) -> bool:
        return np.array(q).tobytes() == p.tobytes()  # bits: tells 0.0 from -0.0

    p = normalize(np.asarray(raw))
    q = normalized(raw)
    assert same(q, p)
    p, q = mix_uniform(p, epsilon), mixed_uniform(q, epsilon)
    assert same(q, p)
    p, q = apply_floor(p, floor), floored(q, floor)
    assert same(q, p)
    chosen = len(q) // 2
    assert ranking_order(q, chosen) == ranking_order(p, chosen)
    rest = [int(i) for i in np.argsort(-p, kind="stable") if i != chosen]
    assert ranking_order(q, chosen) == [chosen, *rest]


def test_ranking_ties_keep_offered_order():
    assert ranking_order([0.25, 0.25, 0.5, 0.0, 0.0], 4) == [4, 2, 0, 1, 3]


def test_event_seed_is_stable_and_separates_apps_events_and_slots():
    assert event_seed(7, "e1") == event_seed(7, "e1")
    seeds = {
        event_seed(7, "e1"),
        event_seed(8, "e1"),
        event_seed(7, "e2"),
        event_seed(7, "e1", "slot"),
    }
    assert len(seeds) == 4
    # a fixed value guards against an accidental change of the hashing, which would
    # silently break exact replay of every existing log
    assert event_seed(0, "event-0") == 0xE419FBDBAE50287F


def test_draws_follow_the_pmf():
    pmf = np.array([0.5, 0.3, 0.15, 0.05])
    counts = np.bincount([draw(pmf, event_seed(1, f"e{i}")) for i in range(40_000)], minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), pmf, atol=0.01)


def test_draw_never_picks_zero_mass_actions():
    pmf = np.array([0.0, 1.0, 0.0])
    assert {draw(pmf, event_seed(1, f"e{i}")) for i in range(500)} == {1}


def test_uniform01_in_range():
    assert 0.0 <= uniform01(0) < 1.0 and 0.0 <= uniform01(2**64 - 1) < 1.0
