"""Slates in-process: exact conditional probabilities, business rules, VW CCB learning."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import vowpal_wabbit_next as vw

from banditrec import DecisionEngine, LoggedEvent
from banditrec.decision.record import set_reward
from banditrec.policies.vw_ccb import VWCCBPolicy
from banditrec.slates import SlateRequest, ccb_lines
from banditrec.slates.choose import SlateRuleError, shaped, subset
from banditrec.slates.decide import exposure_shares, slate_features, slate_from_records

N = 12
ACTIONS = [
    {"id": f"item-{i}", "features": {"topic": {["tech", "sport", "food"][i % 3]: 1, "q": i / N}}}
    for i in range(N)
]
GROUP = {a["id"]: f"creator-{i % 4}" for i, a in enumerate(ACTIONS)}


def slate(event_id: str, positions: int = 4, **kw) -> SlateRequest:
    return SlateRequest(
        event_id=event_id, context={"user": {"tech": 1}}, actions=ACTIONS, positions=positions, **kw
    )


def ccb_engine(epsilon: float = 0.2, kind: str = "vw_ccb", **kw) -> DecisionEngine:
    policy = {"kind": kind, "explorer": {"type": "epsilon", "epsilon": epsilon}}
    return DecisionEngine.from_config({"name": "feed", "policy": policy, **kw})


def rewarded(item: str) -> float:
    return 1.0 if item in {"item-5", "item-7", "item-2"} else 0.0


def train(engine: DecisionEngine, n: int) -> None:
    for t in range(n):
        _, records = engine.decide_slate_logged(slate(f"train-{t}"))
        for record in records:
            chosen = record["_banditrec"]["action_ids"][record["_labelIndex"]]
            assert engine.learn(set_reward(record, rewarded(chosen)))


@pytest.fixture(scope="module", params=["vw_ccb", "vw"])
def trained(request) -> DecisionEngine:
    engine = ccb_engine(kind=request.param)
    train(engine, 300)
    return engine


def test_the_slate_learns_the_rewarded_items_in_its_top_positions(trained):
    top3 = Counter()
    for i in range(200):
        d = trained.decide_slate(slate(f"eval-{i}"))
        top3.update(p.action_id for p in d.slate[:3])
    assert {a for a, _ in top3.most_common(3)} == {"item-5", "item-7", "item-2"}
    assert len({p.action_id for p in d.slate}) == 4  # distinct
    assert [p.position for p in d.slate] == [1, 2, 3, 4]


def test_every_logged_probability_is_the_policys_conditional_pmf_over_what_was_left(trained):
    """Recomputed from scratch — one fresh VW parse and prediction per position over
    exactly the candidates the record lists — the pmf of every position is what was
    logged (the engine predicts every position on one parse of the request)."""
    policy = trained.policy
    cfg = trained.config
    explored = 0
    for i in range(150):
        request = slate(f"exact-{i}")
        d, records = trained.decide_slate_logged(request)
        x = slate_features(request, True)
        ids = x.action_ids
        for record, position in zip(records, d.slate, strict=True):
            event = LoggedEvent.model_validate(set_reward(record, 0.0))
            cands = [ids.index(a) for a in event.meta.action_ids]
            fresh = policy.probabilities(subset(x, cands), 0)
            assert event.pmf() == pytest.approx(shaped(fresh, cfg, None), abs=1e-6)
            assert event.label_probability == pytest.approx(position.probability)
            explored += fresh.index(max(fresh)) != event.label_index
    assert explored > 0  # exploratory draws, and the positions after them, stayed exact


def test_the_same_request_gets_the_same_slate_and_records_rebuild_it(trained):
    a, records = trained.decide_slate_logged(slate("same"))
    assert trained.decide_slate(slate("same")) == a
    assert slate_from_records(records) == a
    assert [r.id for r in a.ranking[:4]] == [p.action_id for p in a.slate]
    assert len(a.ranking) == N


def test_rules_exclude_pin_allowed_and_group_caps_hold_with_exact_pmfs(trained):
    rules = {
        "exclude": ["item-5"],
        "pin": {"item-0": 2},
        "allowed": {1: ["item-7", "item-8", "item-9"]},
        "groups": GROUP,
        "max_per_group": 1,
    }
    for i in range(100):
        d, records = trained.decide_slate_logged(slate(f"rules-{i}", positions=4, rules=rules))
        shown = [p.action_id for p in d.slate]
        assert "item-5" not in shown
        assert shown[1] == "item-0" and d.slate[1].pinned and d.slate[1].probability == 1.0
        assert shown[0] in {"item-7", "item-8", "item-9"}
        assert max(Counter(GROUP[a] for a in shown).values()) == 1
        for record in records:
            offered = record["_banditrec"]["action_ids"]
            assert "item-5" not in offered and sum(record["p"]) == pytest.approx(1.0)
            assert min(record["p"]) >= 0.001 - 1e-12  # the floor, over what the rules left
        # item-8 shares item-0's creator: the pinned item-0 has used the group's one place
        assert set(records[0]["_banditrec"]["action_ids"]) == {"item-7", "item-9"}


def test_rules_that_cannot_be_met_say_why():
    engine = ccb_engine()
    with pytest.raises(SlateRuleError, match="not among the actions"):
        engine.decide_slate(slate("x", rules={"pin": {"nope": 1}}))
    with pytest.raises(SlateRuleError, match="no action"):
        engine.decide_slate(
            slate("x", rules={"groups": GROUP, "max_per_group": {"*": 0 + 1}}, positions=5)
        )
    with pytest.raises(SlateRuleError, match="only"):
        engine.decide_slate(
            slate("x", positions=4, rules={"exclude": [a["id"] for a in ACTIONS[:10]]})
        )
    with pytest.raises(ValueError, match="positions"):
        slate("x", positions=N + 1)


def test_position_draws_follow_the_logged_probabilities():
    """Position 2's draws, conditional on position 1's, match their logged probability."""
    engine = ccb_engine(epsilon=0.5)
    train(engine, 100)
    counts: Counter = Counter()
    expected: dict = {}
    for i in range(3000):
        d = engine.decide_slate(slate(f"freq-{i}", positions=2))
        key = (d.slate[0].action_id, d.slate[1].action_id)
        counts[key] += 1
        expected[key] = d.slate[0].probability * d.slate[1].probability
    for key, n in counts.most_common(5):
        assert n / 3000 == pytest.approx(expected[key], abs=0.03)


def test_vw_reads_and_learns_from_the_ccb_dsjson_log():
    engine = ccb_engine()
    joined = []
    for t in range(300):
        _, records = engine.decide_slate_logged(slate(f"log-{t}"))
        joined += [
            set_reward(r, rewarded(r["_banditrec"]["action_ids"][r["_labelIndex"]]))
            for r in records
        ]
    lines = ccb_lines(joined)
    assert len(lines) == 300
    fresh = vw.Workspace(["--ccb_explore_adf", "--quiet", "--epsilon", "0.0"])
    parser = vw.DSJsonFormatParser(fresh)
    for line in lines:
        fresh.learn_one(parser.parse_json(line))
    example = orjson.loads(lines[0])["c"]
    example["_slots"] = [{}, {}, {}]
    ids = orjson.loads(lines[0])["_banditrec"]["action_ids"]
    pred = fresh.predict_one(vw.JsonFormatParser(fresh).parse_json(orjson.dumps(example)))
    assert {ids[slot[0][0]] for slot in pred} == {"item-5", "item-7", "item-2"}


@pytest.mark.parametrize("kind", ["vw", "linucb", "thompson", "uniform"])
def test_any_policy_ranks_position_by_position(kind):
    engine = DecisionEngine.from_config({"name": "feed", "policy": {"kind": kind}})
    rules = {"groups": GROUP, "max_per_group": 2, "exclude": ["item-1"]}
    for t in range(25):
        _, records = engine.decide_slate_logged(slate(f"p-{t}", positions=5, rules=rules))
        for r in records:
            engine.learn(set_reward(r, rewarded(r["_banditrec"]["action_ids"][r["_labelIndex"]])))
    d = engine.decide_slate(slate("after", positions=5, rules=rules))
    shown = [p.action_id for p in d.slate]
    assert len(set(shown)) == 5 and "item-1" not in shown
    assert max(Counter(GROUP[a] for a in shown).values()) <= 2
    assert all(0 < p.probability <= 1 for p in d.slate)


def test_app_rules_apply_under_the_requests():
    engine = ccb_engine(
        slate={
            "positions": 3,
            "rules": {"exclude": ["item-0"], "groups": GROUP, "max_per_group": 2},
        }
    )
    d = engine.decide_slate(
        SlateRequest(
            event_id="a", actions=ACTIONS, rules={"max_per_group": 1, "exclude": ["item-3"]}
        )
    )
    shown = [p.action_id for p in d.slate]
    assert len(shown) == 3 and not {"item-0", "item-3"} & set(shown)
    assert max(Counter(GROUP[a] for a in shown).values()) == 1


def test_a_vw_ccb_app_also_serves_single_decisions():
    from banditrec import DecisionRequest

    engine = ccb_engine()
    d = engine.decide(DecisionRequest(event_id="single", actions=ACTIONS))
    assert d.action_id in {a["id"] for a in ACTIONS}
    assert sum(r.probability for r in d.ranking) == pytest.approx(1.0)
    # the model round-trips through bytes
    clone = DecisionEngine(
        engine.config,
        {None: VWCCBPolicy.from_bytes(engine.config.policy, engine.policy.to_bytes())},
    )
    assert clone.decide_slate(slate("b")) == engine.decide_slate(slate("b"))


PARTNER = {"item-0", "item-3"}  # never rewarded: a learned policy would bury them


def floors_engine(**slate) -> DecisionEngine:
    engine = ccb_engine(epsilon=0.02, kind="vw", slate=slate)
    train(engine, 150)
    return engine


def test_exposure_floors_hold_in_every_logged_pmf_and_in_what_is_shown():
    groups = {a: ("partner" if a in PARTNER else "other") for a in GROUP}
    engine = floors_engine(exposure_floors={"partner": 0.25})
    baseline = floors_engine()
    shown, shown_before = [], []
    for i in range(400):
        request = slate(f"floor-{i}", rules={"groups": groups})
        _, records = engine.decide_slate_logged(request)
        for r in records:
            ids = r["_banditrec"]["action_ids"]
            partner_mass = sum(
                p for a, p in zip(r["a"], r["p"], strict=True) if ids[a - 1] in PARTNER
            )
            if PARTNER & set(ids):
                assert (
                    partner_mass >= 0.25 * (1 - 0.001 * len(ids)) - 1e-9
                )  # within the floor's mixing
        shown += [p.action_id for p in engine.decide_slate(request).slate]
        shown_before += [p.action_id for p in baseline.decide_slate(request).slate]
    share = sum(a in PARTNER for a in shown) / len(shown)
    before = sum(a in PARTNER for a in shown_before) / len(shown_before)
    assert before < 0.1 and share == pytest.approx(0.25, abs=0.04)
    assert set(exposure_shares(records)) <= {"partner", "other"}  # logged with each position


def test_new_items_reach_their_cold_start_share_bounded_by_the_budget():
    ages = {a: (60.0 if a in {"item-1", "item-4"} else 1e7) for a in GROUP}
    engine = floors_engine(
        cold_start={"max_age_seconds": 3600, "share": 0.5}, exploration_budget=0.2
    )
    shown = []
    for i in range(400):
        request = slate(f"new-{i}", rules={"item_age_seconds": ages})
        shown += [p.action_id for p in engine.decide_slate(request).slate]
    share = sum(a in {"item-1", "item-4"} for a in shown) / len(shown)
    assert share == pytest.approx(0.2, abs=0.04)  # the share asked (0.5) capped by the budget
