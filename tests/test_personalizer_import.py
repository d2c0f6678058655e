"""Personalizer's exported logs: converted to banditrec's joined records, learned by VW, loaded
into a running app's joined stream (its learner learns them), evaluated by `banditrec evaluate`."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from typer.testing import CliRunner

from banditrec.cli import app as cli
from banditrec.config import AppConfig, RewardConfig, SlotConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.record import META_KEY, LoggedEvent
from banditrec.decision.schema import DecisionRequest
from banditrec.eventlog import EventLog, connect
from banditrec.personalizer import DEFAULT_LEARNING_SETTINGS, namespaced, parse_learning_settings
from banditrec.personalizer.logs import PersonalizerLogError, convert, read_personalizer_log
from tests.personalizer_logs import FOODS, context, food_log, layout_log, write
from tests.plugins.ray_cluster import ServiceUnderTest
from tests.polling import wait_for

runner = CliRunner()
POLICY = parse_learning_settings(DEFAULT_LEARNING_SETTINGS).model_copy(
    update={"action_id_feature": False}
)


def test_a_single_slot_event_becomes_the_record_our_join_writes() -> None:
    (line,) = food_log(1, seed=3)
    (record,) = convert("food", line)
    event = LoggedEvent.model_validate(record)
    assert event.event_id == line["EventId"] and event.a == line["a"] and event.p == line["p"]
    assert event.label_index == line["_labelIndex"] and event.reward == -line["_label_cost"]
    assert event.label_probability == line["_label_probability"]
    assert event.meta.action_ids == ["0", "1", "2", "3", "4"]  # Personalizer logs no ids
    # the features a live rank request with the same contextFeatures gets
    context = {k: v for k, v in record["c"].items() if k != "_multi"}
    merged = {k: v for k, v in line["c"].items() if k != "_multi"}
    assert context == namespaced([merged])
    assert record["c"]["_multi"][0] == namespaced([FOODS["pasta"]])
    assert record["Timestamp"].startswith(line["Timestamp"][:19])


def test_a_multi_slot_event_becomes_one_record_per_slot() -> None:
    (line,) = layout_log(1, seed=5)
    records = convert("layout", line)
    assert [r[META_KEY]["slot"] for r in records] == ["Main_Article", "Side_Bar"]
    main, side = (LoggedEvent.model_validate(r) for r in records)
    first = line["_outcomes"][0]["_a"][0]
    assert len(main.a) == 5 and len(side.a) == 4  # the second slot never offers the first's pick
    assert str(first) not in side.meta.action_ids
    assert main.meta.action_ids[main.label_index] == str(first)
    assert main.p == line["_outcomes"][0]["_p"] and side.p == line["_outcomes"][1]["_p"]
    assert records[0]["c"]["default"]["size"] == "Large"  # the slot's features


def test_vw_learns_from_the_imported_log(tmp_path) -> None:
    path = tmp_path / "food.json.gz"
    write(food_log(1500), str(path))
    engine = DecisionEngine.from_config({"name": "food", "policy": POLICY.model_dump()})
    fresh = DecisionEngine.from_config({"name": "food", "policy": POLICY.model_dump()})
    learned = sum(engine.learn(r) for r in read_personalizer_log([path], "food"))
    assert learned == 1500
    # Satya buys low-sodium dishes: the warm-started model ranks one first, the fresh one cannot tell
    ctx = namespaced(context("Satya", random.Random(1)))
    request = DecisionRequest(
        context=ctx, actions=[{"id": f, "features": namespaced([FOODS[f]])} for f in FOODS]
    )
    low_sodium = {f for f, v in FOODS.items() if v["dietary_attributes"]["low_sodium"]}
    greedy = max(engine.decide(request).ranking, key=lambda r: r.probability)
    assert greedy.id in low_sodium and greedy.probability > 0.8
    assert len({r.probability for r in fresh.decide(request).ranking}) == 1  # uniform


def test_multi_slot_logs_are_learned_per_slot() -> None:
    slots = [SlotConfig(name=n, policy=POLICY) for n in ("Main_Article", "Side_Bar")]
    engine = DecisionEngine(AppConfig(name="layout", slots=slots))
    records = [r for line in layout_log(50) for r in convert("layout", line)]
    assert sum(engine.learn(r) for r in records) == 100


def test_the_cli_writes_a_log_evaluate_reads(tmp_path) -> None:
    source = tmp_path / "personalizer.json"
    write(food_log(400, seed=2), str(source))
    out = tmp_path / "food.dsjson"
    result = runner.invoke(
        cli, ["import-personalizer", str(source), "--app", "food", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "400 Personalizer events" in result.output
    assert sum(1 for _ in out.open()) == 400
    evaluated = runner.invoke(
        cli,
        [
            "evaluate", str(out), "--no-progress", "--plot", str(tmp_path / "p.png"),
            "--policy", f"personalizer={DEFAULT_LEARNING_SETTINGS}",
            "--policy", "--cb_explore_adf --epsilon 0.05 --cb_type mtr -q ::",
        ],
    )  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    assert "400 logged decisions" in evaluated.output and "recommendation" in evaluated.output
    assert "vw:epsilon:epsilon=0.05" in evaluated.output


def test_bad_lines_name_the_file_and_line(tmp_path) -> None:
    (line,) = food_log(1)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(line) + "\n" + json.dumps({**line, "a": [1, 1, 2, 3, 4]}) + "\n")
    with pytest.raises(PersonalizerLogError, match=r"broken.json:2: 'a' must be a permutation"):
        list(read_personalizer_log([broken], "food"))
    result = runner.invoke(cli, ["import-personalizer", str(broken), "--app", "f", "-o", "x"])
    assert result.exit_code == 1 and "broken.json:2" in result.output
    unjoined = tmp_path / "unjoined.json"
    unjoined.write_text(json.dumps({k: v for k, v in line.items() if k != "_label_cost"}) + "\n")
    skipped: dict[str, int] = {}
    assert list(read_personalizer_log([unjoined], "food", skipped)) == []
    assert skipped == {"not joined": 1}
    nowhere = runner.invoke(cli, ["import-personalizer", str(unjoined), "--app", "f"])
    assert nowhere.exit_code == 2 and "--out FILE, --load" in nowhere.output


def test_loaded_history_is_learned_by_the_running_app(
    banditrec_service: ServiceUnderTest, tmp_path
) -> None:
    log = EventLog(connect(banditrec_service.redis_url))
    log.configs.put(AppConfig(name="pz-history", policy=POLICY, reward=RewardConfig()))
    source = tmp_path / "history.json.gz"
    write(food_log(300, seed=4), str(source))
    result = runner.invoke(
        cli,
        ["import-personalizer", str(source), "--app", "pz-history", "--load",
         "--redis-url", banditrec_service.redis_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    wait_for(lambda: log.joined.stats("pz-history").get("learned", 0) >= 300, 60, "the warm start")
    wait_for(lambda: log.models.version("pz-history") > 0, 30, "a published model")
    with httpx.Client(base_url=banditrec_service.url, headers=banditrec_service.headers()) as http:
        wait_for(
            lambda: http.get("/v1/apps/pz-history").json().get("served_model_version", 0) > 0,
            30,
            "the replica to serve the warm-started model",
        )
    exported = [r for _, r in log.joined.records("pz-history")]
    assert len(exported) == 300 and exported[0][META_KEY]["policy"] == "personalizer"
    log.close()
