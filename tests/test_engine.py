"""The decision engine as a user calls it: decide, learn, modes, slots, live reconfiguration."""

import dataclasses

import pytest

from banditrec import AppConfig, DecisionEngine, DecisionRequest, LoggedEvent, UnknownSlotError
from banditrec.decision.record import set_reward, to_interaction
from banditrec.decision.schema import ExplorationOverride

from .synthetic import request, run_online

ARTICLES = [
    {
        "id": f"article-{i}",
        "features": {"topic": {["sport", "news", "tech"][i % 3]: 1}, "len": {"words": 100 * i}},
    }
    for i in range(6)
]


def vw_app(**kw) -> AppConfig:
    return AppConfig(
        name="news", policy={"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}}, **kw
    )


def test_the_user_story_from_the_readme():
    engine = DecisionEngine.from_config(
        {"name": "news", "policy": {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}}}
    )
    req = DecisionRequest(
        event_id="e1", context={"user": {"country": "IN", "visits": 3}}, actions=ARTICLES
    )
    d, (record,) = engine.decide_logged(req)
    assert d.event_id == "e1" and d.action_id in {a["id"] for a in ARTICLES}
    assert 0 < d.probability <= 1 and len(d.ranking) == 6 and d.model_version == 0
    event = LoggedEvent.model_validate(set_reward(record, 1.0))
    assert event.meta.action_ids[event.label_index] == d.action_id
    assert event.label_probability == pytest.approx(d.probability)
    assert event.pmf()[event.label_index] == pytest.approx(d.probability)
    assert engine.learn(event) is True
    assert engine.policy.n_learned == 1


def test_a_record_without_reward_or_marked_skip_is_not_learned():
    engine = DecisionEngine(vw_app())
    _, (record,) = engine.decide_logged(request(1, 0))
    assert engine.learn(record) is False  # no reward joined yet
    _, (deferred,) = engine.decide_logged(request(2, 0).model_copy(update={"deferred": True}))
    assert engine.learn(set_reward(deferred, 1.0)) is False  # never activated
    assert engine.policy.n_learned == 0


def test_learning_changes_what_is_served():
    engine = DecisionEngine(vw_app(min_probability=0.0))
    req = DecisionRequest(event_id="e", context={"user": {"c": "IN"}}, actions=ARTICLES)
    before = engine.decide(req)
    # ε = 0.1 over 6 actions tries the rewarded one 1 time in 60: give it a few hundred events
    for i in range(400):
        _, (record,) = engine.decide_logged(req.model_copy(update={"event_id": f"t{i}"}))
        chosen = record["_banditrec"]["action_ids"][record["_labelIndex"]]
        engine.learn(set_reward(record, 1.0 if chosen == "article-4" else 0.0))
    after = engine.decide(req)
    assert after.ranking != before.ranking
    assert max(after.ranking, key=lambda r: r.probability).id == "article-4"


@pytest.mark.parametrize("mode", ["apprentice", "logging"])
def test_apprentice_and_logging_serve_the_default_action(mode):
    engine = DecisionEngine(vw_app(mode=mode, min_probability=0.0))
    chosen = {engine.decide(request(i, i % 4)).action_id for i in range(100)}
    assert chosen == {"item-0"}
    rewards = run_online(engine, 300)
    assert rewards.size == 300
    # apprentice learns in the background; logging learns nothing
    assert (engine.policy.n_learned > 0) == (mode == "apprentice")


def test_apprentice_floor_keeps_the_log_usable():
    engine = DecisionEngine(vw_app(mode="apprentice", min_probability=0.02))
    d = engine.decide(request(1, 0))
    assert min(r.probability for r in d.ranking) == pytest.approx(0.02)


def test_per_request_exploration_override():
    engine = DecisionEngine(AppConfig(policy={"kind": "fixed"}, min_probability=0.0))
    req = request(1, 0)
    assert engine.decide(req).ranking[-1].probability == 0.0
    more = req.model_copy(update={"exploration": ExplorationOverride(epsilon=0.5)})
    assert engine.decide(more).ranking[0].probability == pytest.approx(0.5 + 0.5 / 5)
    floored = req.model_copy(update={"exploration": ExplorationOverride(min_probability=0.1)})
    assert min(r.probability for r in engine.decide(floored).ranking) == pytest.approx(0.1)


def test_reconfigure_keeps_the_model_when_only_exploration_changes():
    engine = DecisionEngine(vw_app(min_probability=0.0))
    run_online(engine, 500)
    learned = engine.policy.n_learned
    greedy_before = max(engine.decide(request(9, 1)).ranking, key=lambda r: r.probability).id
    engine.reconfigure(
        AppConfig(
            name="news",
            policy={"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.5}},
            min_probability=0.0,
        )
    )
    d = engine.decide(request(9, 1))
    top = max(d.ranking, key=lambda r: r.probability)
    assert top.id == greedy_before  # the learned model survived
    assert top.probability == pytest.approx(0.5 + 0.5 / 5, abs=1e-6)  # the new epsilon is live
    assert learned > 0


def test_reconfigure_to_another_policy_kind_starts_fresh():
    engine = DecisionEngine(vw_app())
    run_online(engine, 50)
    engine.reconfigure(AppConfig(name="news", policy={"kind": "ucb1"}))
    assert engine.policy.kind == "ucb1" and engine.policy.n_learned == 0


def test_model_swap_is_visible_to_the_next_request():
    trained, fresh = (
        DecisionEngine(vw_app(min_probability=0.0)),
        DecisionEngine(vw_app(min_probability=0.0)),
    )
    run_online(trained, 1000)
    fresh.load_models(trained.model_bytes(), version=7)
    req = request(42, 2)
    assert fresh.decide(req) == dataclasses.replace(trained.decide(req), model_version=7)


def test_multi_slot_decisions_and_records():
    config = AppConfig(
        name="journey",
        slots=[
            {"name": "content", "policy": {"kind": "vw"}},
            {"name": "channel", "policy": {"kind": "thompson"}},
        ],
    )
    engine = DecisionEngine(config)
    req = DecisionRequest(
        event_id="u1",
        context={"user": {"tier": "gold"}},
        slots=[
            {"id": "content", "actions": ARTICLES},
            {"id": "channel", "actions": [{"id": c} for c in ["email", "push", "sms"]]},
        ],
    )
    d, records = engine.decide_logged(req)
    assert [s.slot for s in d.slots] == ["content", "channel"] and d.action_id is None
    assert [r["EventId"] for r in records] == ["u1/content", "u1/channel"]
    for r in records:
        joined = set_reward(r, 1.0)
        assert engine.learn(joined)
        assert to_interaction(joined).slot == r["_banditrec"]["slot"]
    assert all(p.n_learned == 1 for p in engine.policies.values())
    with pytest.raises(UnknownSlotError, match="does not serve slot 'price'"):
        engine.decide(DecisionRequest(slots=[{"id": "price", "actions": ARTICLES}]))
    with pytest.raises(UnknownSlotError, match="single-slot request"):
        engine.decide(DecisionRequest(actions=ARTICLES))


def test_logged_record_is_readable_by_vw_dsjson():
    import orjson
    import vowpal_wabbit_next as vw

    engine = DecisionEngine(vw_app())
    _, (record,) = engine.decide_logged(request(3, 1))
    record = set_reward(record, 1.0)
    assert next(iter(record)) == "_label_cost"
    ws = vw.Workspace(["--cb_explore_adf", "--quiet"])
    examples = vw.DSJsonFormatParser(ws).parse_json(orjson.dumps(record).decode())
    labelled = [e.get_label() for e in examples if e.get_label().label is not None]
    assert len(labelled) == 1 and labelled[0].label[1:] == (
        0.0,  # the best reward of the range [0, 1] is cost 0
        pytest.approx(record["_label_probability"]),
    )
    ws.learn_one(examples)


@pytest.mark.parametrize("explorer", ["epsilon", "softmax", "bag", "cover"])
def test_records_for_the_log_serialize_to_the_same_bytes(explorer):
    """The service logs records whose features are already JSON (the bytes VW parsed); they
    must serialize to exactly what the plain records do, slot by slot."""
    import orjson

    policy = {"kind": "vw", "explorer": {"type": explorer}}
    configs = [
        AppConfig(name="news", policy=policy),
        AppConfig(
            name="journey",
            slots=[{"name": "content", "policy": policy}, {"name": "channel", "policy": policy}],
        ),
    ]
    for config in configs:
        engine = DecisionEngine(config)
        for i in range(20):
            req = request(i, i % 3)
            if config.slots:
                req = DecisionRequest(
                    event_id=req.event_id,
                    context=req.context,
                    slots=[{"id": s.name, "actions": req.actions} for s in config.slots],
                )
            _, plain = engine.decide_logged(req, now=1_700_000_000.0)
            _, for_log = engine.decide_logged(req, now=1_700_000_000.0, serialized_features=True)
            assert [orjson.dumps(r) for r in for_log] == [orjson.dumps(r) for r in plain]
            assert isinstance(for_log[0]["c"], orjson.Fragment)
