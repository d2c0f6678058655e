"""Every policy: valid pmfs with the floor, learns better than uniform, survives save → load."""

import numpy as np
import pytest
import vowpal_wabbit_next as vw

from banditrec import AppConfig, DecisionEngine, FeatureSet, Interaction, load_policy, make_policy
from banditrec.config import FixedConfig, UniformConfig
from banditrec.decision.pmf import apply_floor, normalize
from banditrec.decision.sampling import event_seed

from .synthetic import UNIFORM_VALUE, request, run_online

VW_EXPLORERS = {
    "epsilon": {"type": "epsilon", "epsilon": 0.1},
    "softmax": {"type": "softmax", "lambda": 10},
    "bag": {"type": "bag", "bags": 5, "epsilon": 0.05},
    "cover": {"type": "cover", "policies": 3, "psi": 0.1},
    "squarecb": {"type": "squarecb"},
    "regcb": {"type": "regcb"},
    "regcb_optimistic": {"type": "regcb", "optimistic": True},
    "rnd": {"type": "rnd"},
}
CONTEXTUAL = {
    **{
        f"vw-{k}": {"kind": "vw", "explorer": e, "interactions": ["ui"]}
        for k, e in VW_EXPLORERS.items()
    },
    "linucb": {"kind": "linucb", "alpha": 0.5},
    "lin_ts": {"kind": "lin_ts", "v": 0.3},
}
NON_CONTEXTUAL = {
    "mab_epsilon": {"kind": "mab_epsilon", "epsilon": 0.1},
    "ucb1": {"kind": "ucb1"},
    "thompson-beta": {"kind": "thompson"},
    "thompson-gaussian": {"kind": "thompson", "likelihood": "gaussian"},
}
ALL = {**CONTEXTUAL, **NON_CONTEXTUAL, "uniform": {"kind": "uniform"}, "fixed": {"kind": "fixed"}}


def engine(policy: dict, **app) -> DecisionEngine:
    return DecisionEngine(AppConfig(policy=policy, **app))


@pytest.mark.parametrize("name", CONTEXTUAL)
def test_contextual_learner_beats_uniform(name):
    rewards = run_online(engine(CONTEXTUAL[name]), 3000, seed=1)
    # uniform earns 0.32 here and the best policy 0.8; each learner must be well on its way
    assert rewards[-1000:].mean() > UNIFORM_VALUE + 0.25, name


@pytest.mark.parametrize("name", NON_CONTEXTUAL)
def test_non_contextual_learner_beats_uniform(name):
    rewards = run_online(engine(NON_CONTEXTUAL[name]), 2000, contextual=False, seed=2)
    assert rewards[-1000:].mean() > UNIFORM_VALUE + 0.3, name


def test_uniform_baseline_earns_the_uniform_value():
    rewards = run_online(engine({"kind": "uniform"}), 4000, seed=3)
    assert abs(rewards.mean() - UNIFORM_VALUE) < 0.03


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("floor", [0.0, 0.02])
def test_pmf_sums_to_one_and_respects_the_floor(name, floor):
    e = engine(ALL[name], min_probability=floor)
    run_online(e, 200, seed=4)  # a trained model has sharper pmfs than a fresh one
    for i in range(50):
        req = request(10_000 + i, i % 4)
        (x,) = e.features(req).values()
        p = e.pmf(x, event_seed(0, req.event_id))
        assert p.sum() == pytest.approx(1.0)
        assert p.min() >= floor - 1e-12
        d = e.decide(req)
        assert sum(r.probability for r in d.ranking) == pytest.approx(1.0)
        assert d.ranking[0].id == d.action_id and d.probability == d.ranking[0].probability


@pytest.mark.parametrize("name", ALL)
def test_save_then_load_gives_identical_predictions(name):
    e = engine(ALL[name])
    run_online(e, 300, seed=5)
    policy = e.policy
    clone = load_policy(policy.config, policy.to_bytes())
    for i in range(30):
        (x,) = e.features(request(20_000 + i, i % 4)).values()
        seed = event_seed(0, f"s{i}")
        np.testing.assert_array_equal(policy.pmf(x, seed), clone.pmf(x, seed))


@pytest.mark.parametrize("name", ALL)
def test_same_event_id_same_decision(name):
    e = engine(ALL[name], seed=11)
    run_online(e, 100, seed=6)
    for i in range(20):
        req = request(30_000 + i, i % 4)
        assert e.decide(req) == e.decide(req.model_copy())


def test_decisions_differ_across_events_and_app_seeds():
    a, b = engine({"kind": "uniform"}, seed=1), engine({"kind": "uniform"}, seed=2)
    chosen_a = [a.decide(request(i, 0)).action_id for i in range(200)]
    chosen_b = [b.decide(request(i, 0)).action_id for i in range(200)]
    assert len(set(chosen_a)) == 5 and chosen_a != chosen_b


def test_fixed_policy_serves_configured_action_or_first():
    x = FeatureSet.build({}, [("a", {}), ("b", {}), ("c", {})])
    assert list(make_policy(FixedConfig(action_id="b")).pmf(x, 0)) == [0, 1, 0]
    assert list(make_policy(FixedConfig(action_id="zzz")).pmf(x, 0)) == [1, 0, 0]
    assert list(make_policy(UniformConfig()).pmf(x, 0)) == pytest.approx([1 / 3] * 3)


def test_vw_learns_from_interactions_directly():
    policy = make_policy(
        AppConfig(policy={"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.0}}).policy
    )
    x = FeatureSet.build({"u": {"a": 1}}, [("good", {"f": {"g": 1}}), ("bad", {"f": {"b": 1}})])
    for _ in range(50):
        policy.learn(Interaction(x, 0, 0.5, 1.0))
        policy.learn(Interaction(x, 1, 0.5, 0.0))
    assert list(policy.pmf(x, 0)) == [1.0, 0.0]
    assert policy.n_learned == 100


def test_vw_without_context_features_learns_the_right_action():
    # no shared example is emitted when the context is empty; the label must still land right
    policy = make_policy(
        AppConfig(policy={"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.0}}).policy
    )
    x = FeatureSet.build({}, [("a", {}), ("b", {}), ("c", {})])
    for _ in range(30):  # untried actions look as good as the best (cost 0): try them all
        for chosen in range(3):
            policy.learn(Interaction(x, chosen, 1 / 3, 1.0 if chosen == 2 else 0.0))
    assert int(np.argmax(policy.pmf(x, 0))) == 2


def test_thompson_beta_rejects_rewards_outside_unit_interval():
    policy = make_policy(AppConfig(policy={"kind": "thompson"}).policy)
    x = FeatureSet.build({}, [("a", {})])
    with pytest.raises(ValueError, match=r"rewards in \[0, 1\]"):
        policy.learn(Interaction(x, 0, 1.0, 5.0))


@pytest.mark.parametrize("explorer", ["epsilon", "softmax", "bag", "squarecb"])
def test_vw_direct_predict_equals_the_public_parse_and_predict(explorer):
    # VWPolicy skips vowpal_wabbit_next's per-example wrappers and label checks; the
    # probabilities must be exactly those of the public parse_json + predict_one.
    e = engine({"kind": "vw", "explorer": VW_EXPLORERS[explorer], "interactions": ["ui"]})
    run_online(e, 300, seed=7)
    policy = e.policy
    ws = policy.workspace
    parser = vw.JsonFormatParser(ws)
    for i in range(30):
        (x,) = e.features(request(40_000 + i, i % 4)).values()
        expected = np.zeros(len(x))
        for index, prob in ws.predict_one(parser.parse_json(x.vw_json())):
            expected[index] = prob
        assert policy.probabilities(x, 0) == expected.tolist()
        np.testing.assert_array_equal(policy.pmf(x, 0), expected)


def test_engine_pmf_is_the_numpy_shaping_of_the_policy_pmf():
    # the decision path shapes pmfs on lists; it must serve exactly what the ndarray
    # functions give for the same policy output
    e = engine(CONTEXTUAL["vw-softmax"], min_probability=0.05)
    run_online(e, 300, seed=8)
    for i in range(30):
        req = request(50_000 + i, i % 4)
        (x,) = e.features(req).values()
        seed = event_seed(0, req.event_id)
        expected = apply_floor(normalize(e.policy.pmf(x, seed)), 0.05)
        assert e.pmf(x, seed).tobytes() == expected.tobytes()
        _, (choice,) = e.choose(req)
        assert choice.pmf.tobytes() == expected.tobytes()
        assert choice.probabilities == expected.tolist()


def test_vw_falls_back_to_the_public_path_without_the_native_calls(monkeypatch):
    cfg = AppConfig(policy={"kind": "vw"}).policy
    x = FeatureSet.build({"u": {"a": 1}}, [("a", {"f": {"g": 1}}), ("b", {"f": {"b": 1}})])
    direct = make_policy(cfg).probabilities(x, 0)
    monkeypatch.setattr(vw, "_core", None)  # the public parser keeps its own reference
    fallback = make_policy(cfg)
    assert fallback.probabilities(x, 0) == direct


@pytest.mark.parametrize("context", [{"u": {"a": 1}}, {}])  # with and without a shared example
def test_vw_direct_learn_equals_the_public_parse_and_learn(monkeypatch, context):
    cfg = AppConfig(policy={"kind": "vw", "explorer": VW_EXPLORERS["squarecb"]}).policy
    direct = make_policy(cfg)
    rng = np.random.default_rng(3)
    interactions = []
    for i in range(200):
        actions = [(f"a{j}", {"f": {f"g{j}": float(rng.random())}}) for j in range(4)]
        x = FeatureSet.build(context, actions)
        interactions.append(Interaction(x, i % 4, 0.25, float(rng.random())))
    for it in interactions:
        direct.learn(it)
    monkeypatch.setattr(vw, "_core", None)
    public = make_policy(cfg)
    for it in interactions:
        public.learn(it)
    assert direct.to_bytes() == public.to_bytes()


def test_vw_learns_a_dsjson_line_the_same_on_the_native_and_the_public_path(monkeypatch):
    import orjson

    from banditrec.decision.record import set_reward

    e = engine({"kind": "vw", "explorer": VW_EXPLORERS["epsilon"]})
    lines = []
    for i in range(100):
        _, (record,) = e.decide_logged(request(60_000 + i, i % 4))
        lines.append(orjson.dumps(set_reward(record, float(i % 3 == 0))).decode())
    cfg = e.config.policy
    native = make_policy(cfg)
    monkeypatch.setattr(vw, "_core", None)
    public = make_policy(cfg)
    for line in lines:
        native.learn_dsjson(line)
        public.learn_dsjson(line)
    assert native.n_learned == public.n_learned == 100
    assert native.to_bytes() == public.to_bytes() != make_policy(cfg).to_bytes()
