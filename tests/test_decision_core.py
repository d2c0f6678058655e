"""The decision core's single pieces: one record, one learnable rule, one decide-and-record
path for the simulators, one estimator list, and `rl/` building on `policies/` only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from banditrec import AppConfig, DecisionEngine, DecisionRequest
from banditrec.decision.record import (
    NEVER_ACTIVATED,
    NOT_JOINED,
    SINGLE_SLOT,
    DSJsonRecord,
    LoggedEvent,
    set_reward,
    slot_key,
    to_interaction,
    unlearnable,
)
from banditrec.decision.recorder import Recorder
from banditrec.replay import from_records
from banditrec.replay.registry import ESTIMATORS

SRC = Path(__file__).resolve().parents[1] / "src" / "banditrec"


def request(i: int, **extra: object) -> DecisionRequest:
    return DecisionRequest.model_validate(
        {
            "event_id": f"e{i}",
            "context": {"user": {"age": 30 + i}},
            "actions": [{"id": a, "features": {"item": {"kind": a}}} for a in ("x", "y", "z")],
            **extra,
        }
    )


def test_learner_and_replay_turn_away_the_same_records_for_the_same_reasons():
    engine = DecisionEngine(AppConfig(name="core"))
    _, (pending,) = engine.decide_logged(request(0))
    _, (deferred,) = engine.decide_logged(request(1, deferred=True))
    _, (served,) = engine.decide_logged(request(2))
    records = [pending, set_reward(deferred, 1.0), set_reward(served, 1.0)]
    assert [unlearnable(r) for r in records] == [NOT_JOINED, NEVER_ACTIVATED, None]
    assert [unlearnable(LoggedEvent.model_validate(r)) for r in records] == [
        NOT_JOINED,
        NEVER_ACTIVATED,
        None,
    ]
    assert [to_interaction(r) is None for r in records] == [True, True, False]
    data = from_records(records)
    assert data.n == 1 and data.skipped == {NOT_JOINED: 1, NEVER_ACTIVATED: 1}


def test_one_record_type_reads_ours_and_vw_s_with_one_pmf():
    engine = DecisionEngine(AppConfig(name="core"))
    _, (record,) = engine.decide_logged(request(3))
    ours = LoggedEvent.model_validate(record)
    plain = {k: v for k, v in record.items() if not k.startswith("_banditrec")}
    vw = DSJsonRecord.model_validate(plain)
    assert isinstance(ours, DSJsonRecord)
    assert ours.pmf() == vw.pmf() and sum(vw.pmf()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"c\._multi must list the offered actions"):
        DSJsonRecord.model_validate({**plain, "c": {}})


def test_the_single_slot_key_is_one_constant():
    engine = DecisionEngine(AppConfig(name="core"))
    assert slot_key(None) == SINGLE_SLOT and slot_key("top") == "top"
    assert set(engine.model_bytes()) == {SINGLE_SLOT}


def test_the_recorder_decides_as_the_engine_serves_and_logs_as_the_join_writes():
    engine = DecisionEngine(AppConfig(name="core"))
    recorder = Recorder(engine)
    x = engine.features(request(4))[None]
    choice = recorder.decide("e4", x)
    decision = engine.decide(request(4))
    assert x.action_ids[choice.chosen] == decision.action_id
    assert choice.probabilities[choice.chosen] == decision.probability
    joined = recorder.joined("e4", choice, 1.0, now=1_700_000_000.0)
    event = LoggedEvent.model_validate(joined)
    assert event.reward == 1.0 and event.label_index == choice.chosen
    assert event.meta.policy == "vw" and event.meta.decided_at == 1_700_000_000.0
    learned = choice.interaction(1.0)
    assert (learned.chosen, learned.probability) == (choice.chosen, event.label_probability)
    with pytest.raises(ValueError, match="use a single-slot app"):
        Recorder(DecisionEngine(AppConfig(name="multi", slots=[{"name": "a"}, {"name": "b"}])))


def test_every_estimator_is_listed_in_one_read_only_registry():
    assert {"ips", "dr", "pseudo_inverse", "slate_ips"} <= set(ESTIMATORS)
    with pytest.raises(TypeError):
        ESTIMATORS["mine"] = ESTIMATORS["ips"]  # type: ignore[index]


def _imports(path: Path) -> set[str]:
    """Absolute names of the banditrec modules `path` imports (lazy imports included)."""
    package = list(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            names.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_rl_builds_on_the_policies_and_the_core_never_the_other_way_round():
    for folder in ("policies", "decision"):
        for path in (SRC / folder).glob("*.py"):
            rl = sorted(n for n in _imports(path) if n.startswith("banditrec.rl"))
            assert not rl, f"{path.relative_to(SRC)} imports {rl}"
