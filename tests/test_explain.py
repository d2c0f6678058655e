"""Per-decision explanations: their arithmetic, their format, and what they name on a simulator."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import vowpal_wabbit_next as vw

import banditrec.envs  # noqa: F401  (registers the simulators)
from banditrec import DecisionEngine, DecisionRequest
from banditrec.decision.features import FeatureSet, Interaction
from banditrec.explain import ExplainedDecision

from .synthetic import run_online

ACTIONS = [
    {"id": "a1", "features": {"topic": {"tech": 1}, "item": {"q": 0.3, "kind": "video"}}},
    {"id": "a2", "features": {"topic": {"sports": 1}, "item": {"q": 0.9}}},
]


def _request(explain: bool = True, **kw) -> DecisionRequest:
    return DecisionRequest(
        event_id="e1",
        context={"user": {"tech": 0.7, "country": "IN", "new": True}},
        actions=ACTIONS,
        explain=explain,
        **kw,
    )


def test_off_by_default_and_on_request() -> None:
    engine = DecisionEngine.from_config({"name": "x"})
    plain = engine.decide(_request(explain=False))
    assert type(plain).__name__ == "Decision"
    explained = engine.decide(_request())
    assert isinstance(explained, ExplainedDecision)
    (e,) = explained.explanations
    assert e.chosen == explained.action_id and e.slot is None and e.version == 1
    assert e.probabilities == {r.id: r.probability for r in explained.ranking}
    # the same action and probabilities with or without the explanation
    assert (plain.action_id, plain.ranking) == (explained.action_id, explained.ranking)


def test_vw_terms_add_up_to_vw_own_scores() -> None:
    """The per-feature terms (first order and interactions) reproduce VW's cb_adf scores."""
    config = {
        "name": "x",
        "policy": {
            "kind": "vw",
            "interactions": ["ut", "ui", "uu"],
            "explorer": {"type": "epsilon", "epsilon": 0.2},
        },
    }
    engine = DecisionEngine.from_config(config)
    # the same model without exploration: cb_adf, whose predictions are the scores
    args = engine.config.policy.vw_args()
    eps = args.index("--epsilon")
    reference = vw.Workspace(["--cb_adf", *args[1:eps], *args[eps + 2 :]])
    parser = vw.JsonFormatParser(reference)
    rng = np.random.default_rng(0)
    for i in range(300):
        d, (record,) = engine.decide_logged(
            DecisionRequest(
                event_id=f"e{i}",
                context={"user": {"tech": float(rng.random()), "country": "IN"}},
                actions=ACTIONS,
            )
        )
        reward = float(rng.random() < 0.5)
        x = FeatureSet.from_dsjson_c(record["c"], ["a1", "a2"])
        chosen, p = record["_labelIndex"], record["_label_probability"]
        engine.learn(Interaction(x, chosen, p, reward))
        examples = parser.parse_json(x.vw_json())
        examples[chosen - len(x)].set_label(vw.CBLabel(label=(1.0 - reward, p)))  # costs.py
        reference.learn_one(examples)
    d = engine.decide(_request())
    (e,) = d.explanations
    x = engine.features(_request())[None]
    vw_scores = dict(reference.predict_one(parser.parse_json(x.vw_json())))
    for index, action in enumerate(["a1", "a2"]):
        assert e.scores[action] == pytest.approx(1.0 - vw_scores[index], abs=1e-5)
    total = e.bias + e.rest + sum(c.contribution for c in e.contributions)
    assert total == pytest.approx(e.scores[e.chosen], abs=1e-6)
    assert any("*" in c.feature for c in e.contributions)  # interaction terms are named
    assert e.greedy == max(e.scores, key=e.scores.get)
    assert e.exploratory == (e.chosen != e.greedy)


@pytest.mark.parametrize("kind", ["linucb", "lin_ts"])
def test_linear_terms_add_up_to_theta_x(kind: str) -> None:
    engine = DecisionEngine.from_config({"name": "x", "policy": {"kind": kind, "dim": 64}})
    run_online(engine, 200)
    d = engine.decide(_request())
    (e,) = d.explanations
    policy = engine.policy
    x = engine.features(_request())[None]
    expected = x.hashed(64) @ policy.theta
    assert [e.scores[a] for a in ("a1", "a2")] == pytest.approx(expected.tolist(), abs=1e-9)
    total = e.bias + e.rest + sum(c.contribution for c in e.contributions)
    assert total == pytest.approx(e.scores[e.chosen], abs=1e-9)
    assert {c.feature for c in e.contributions} >= {"item^kind=video"} or e.chosen == "a2"


def test_mab_and_baselines() -> None:
    mab = DecisionEngine.from_config({"name": "x", "policy": {"kind": "mab_epsilon"}})
    run_online(mab, 100, contextual=False)
    (e,) = mab.decide(_request()).explanations
    assert e.score_kind == "mean reward" and e.contributions == []
    (u,) = (
        DecisionEngine.from_config({"name": "u", "policy": {"kind": "uniform"}})
        .decide(_request())
        .explanations
    )
    assert u.scores is None and u.greedy is None and u.exploratory is None


def test_multi_slot_explains_each_slot() -> None:
    engine = DecisionEngine.from_config(
        {"name": "s", "slots": [{"name": "top"}, {"name": "side", "policy": {"kind": "linucb"}}]}
    )
    d = engine.decide(
        DecisionRequest(
            context={"user": {"tech": 1}},
            slots=[{"id": "top", "actions": ACTIONS}, {"id": "side", "actions": ACTIONS}],
            explain=True,
        )
    )
    assert [e.slot for e in d.explanations] == ["top", "side"]
    assert [e.policy for e in d.explanations] == ["vw:squarecb", "linucb"]


def test_the_format_is_json() -> None:
    import orjson

    engine = DecisionEngine.from_config({"name": "x"})
    body = json.loads(orjson.dumps(engine.decide(_request())))
    (e,) = body["explanations"]
    assert set(e) == {
        "slot", "policy", "chosen", "greedy", "exploratory", "probabilities",
        "score_kind", "scores", "contributions", "bias", "rest", "version",
    }  # fmt: skip
    assert all(
        set(c) == {"feature", "value", "weight", "contribution", "relative"}
        for c in e["contributions"]
    )


def test_simulator_explanations_name_the_relevant_features_first() -> None:
    """Content-v0 clicks depend on user interest × item topic and on quality; a context
    namespace of pure noise added to every request must not lead any explanation."""
    env = gym.make("banditrec/Content-v0")
    rng = np.random.default_rng(1)
    engine = DecisionEngine.from_config(
        {
            "name": "content",
            "policy": {
                "kind": "vw",
                "interactions": ["ut"],
                "action_id_feature": False,
                "explorer": {"type": "epsilon", "epsilon": 0.2},
            },
        }
    )
    _, info = env.reset(seed=3)
    tops: list[str] = []
    noise_share = []
    for t in range(3000):
        context = {**info["context"], "noise": {f"n{j}": float(rng.random()) for j in range(5)}}
        request = DecisionRequest(
            event_id=f"s{t}", context=context, actions=info["actions"], explain=t >= 2600
        )
        d, (record,) = engine.decide_logged(request)
        chosen = record["_labelIndex"]
        _, reward, _, _, info_next = env.step(chosen)
        engine.learn(
            Interaction(
                engine.features(request)[None], chosen, record["_label_probability"], reward
            )
        )
        if request.explain:
            (e,) = d.explanations
            tops.append(e.contributions[0].feature)
            total = sum(abs(c.contribution) for c in e.contributions)
            noise = sum(abs(c.contribution) for c in e.contributions if "noise^" in c.feature)
            noise_share.append(noise / total)
        info = info_next
    relevant = [f for f in tops if f.startswith(("user^", "item^quality", "topic^"))]
    assert not [f for f in tops if f.startswith("noise^")], tops
    assert len(relevant) == len(tops)
    assert float(np.mean(noise_share)) < 0.15


def test_rl_explanation_values_per_action_and_gradient_terms() -> None:
    from banditrec.decision.journey import journey_request
    from banditrec.envs.journey import OBS_FIELDS, EngagementJourneyEnv
    from banditrec.rl.evaluate import rl_engine
    from banditrec.rl.pretrained import JOURNEY_PPO

    env = EngagementJourneyEnv()
    obs, info = env.reset(seed=3)
    engine = rl_engine(JOURNEY_PPO.read_bytes())
    request = journey_request(obs, OBS_FIELDS, info["actions"], "u7", 0)
    request = request.model_copy(update={"explain": True})
    d = engine.decide(request)
    (e,) = d.explanations
    assert e.score_kind in ("action logit", "Q-value")
    assert set(e.scores) == {a["id"] for a in info["actions"]}
    assert e.greedy == max(e.scores, key=e.scores.get)
    assert e.contributions and all(c.feature.startswith("state^") for c in e.contributions)
    total = e.bias + e.rest + sum(c.contribution for c in e.contributions)
    assert total == pytest.approx(e.scores[e.chosen])
