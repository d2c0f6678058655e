"""Reading logs: the live service's DSJson exports, VW's plain DSJson, multi-slot logs, obp."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import orjson
import pytest

import banditrec.envs  # noqa: F401  (registers banditrec/… envs)
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.record import set_reward
from banditrec.decision.sampling import event_seed
from banditrec.decision.schema import DecisionRequest
from banditrec.replay import (
    LogFormatError,
    LoggedBandit,
    counterfactual,
    evaluate,
    from_records,
    make_candidate,
    obp_action_dist,
    read_dsjson,
    target_pmfs,
)

LOGGER = {
    "name": "channels",
    "seed": 42,
    "policy": {
        "kind": "vw",
        "explorer": {"type": "epsilon", "epsilon": 0.3},
        "interactions": ["uc"],
    },
}


def service_records(
    env, engine: DecisionEngine, n: int, seed: int, *, slots: tuple[str, ...] = ()
) -> tuple[list[dict], np.ndarray]:
    """Joined DSJson records exactly as the live service writes them (decide_logged, then
    the join's set_reward), and each decision's ground truth (n, K)."""
    rng = np.random.default_rng(seed)
    batch = env.unwrapped.sample_batch(n, rng)
    logged = []
    for i in range(n):
        if slots:
            actions = batch.request(i).model_dump()["actions"]
            request = DecisionRequest(
                event_id=f"ev{seed}-{i}",
                context=batch.context(i),
                slots=[{"id": s, "actions": actions} for s in slots],
            )
        else:
            request = batch.request(i, event_id=f"ev{seed}-{i}")
        logged.append(engine.decide_logged(request, now=1_700_000_000.0 + i)[1])
    # one reward draw per slot, each slot's reward depending on its own action only
    rewards = [
        batch.sample_rewards(np.array([records[k]["_labelIndex"] for records in logged]), rng)
        for k in range(len(logged[0]))
    ]
    joined = [
        set_reward(record, float(rewards[k][i]), joined_at=1_700_000_100.0 + i)
        for i, records in enumerate(logged)
        for k, record in enumerate(records)
    ]
    return joined, batch.expected_rewards


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@pytest.fixture(scope="module")
def channel():
    env = gym.make("banditrec/Channel-v0")
    env.reset(seed=3)
    return env


@pytest.fixture(scope="module")
def trained_logger(channel):
    engine = DecisionEngine.from_config(LOGGER)
    records, _ = service_records(channel, engine, 300, seed=1)
    for record in records:
        engine.learn(record)
    return engine


@pytest.fixture(scope="module")
def service_log(channel, trained_logger, tmp_path_factory):
    records, truth = service_records(channel, trained_logger, 400, seed=2)
    return write_lines(tmp_path_factory.mktemp("logs") / "channels.dsjson", records), records, truth


def test_reads_a_service_export_and_reproduces_the_served_pmfs(service_log, trained_logger):
    path, records, _ = service_log
    data = read_dsjson(path)
    assert data.n == len(records) == 400
    assert data.n_actions == 4 and data.mask.all()
    assert data.action_ids is not None and data.action_ids[0] == ["email", "push", "sms", "in_app"]
    np.testing.assert_allclose(data.pscore, [r["_label_probability"] for r in records])
    np.testing.assert_allclose(data.reward, [r["_banditrec"]["reward"] for r in records])
    np.testing.assert_allclose(data.reward, [1.0 - r["_label_cost"] for r in records])
    np.testing.assert_allclose(data.pi_b.sum(axis=1), 1.0)
    assert data.event_id[5] == "ev2-5" and data.timestamp[5] == pytest.approx(1_700_000_005.0)
    assert data.seed(42, 5) == event_seed(42, "ev2-5")
    assert data.feature_set(7).vw_json() == orjson.dumps(records[7]["c"])
    # The same engine, asked through the evaluation path, gives back every logged pmf: what
    # OPE evaluates is exactly what served.
    np.testing.assert_allclose(target_pmfs(trained_logger, data), data.pi_b, rtol=1e-12)


def test_vw_plain_dsjson_and_gzip_read_the_same(service_log, tmp_path):
    path, records, _ = service_log
    ours = read_dsjson(path)
    plain = [{k: v for k, v in r.items() if k != "_banditrec"} for r in records]
    with gzip.open(tmp_path / "vw.dsjson.gz", "wb") as fh:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in plain))
    vw = read_dsjson(tmp_path / "vw.dsjson.gz")
    for name in ("action", "pscore", "pi_b"):
        np.testing.assert_array_equal(getattr(vw, name), getattr(ours, name))
    # VW's plain records are read as reward = −cost; ours learned cost = 1 − reward
    np.testing.assert_allclose(vw.reward, ours.reward - 1.0)
    assert vw.ids(0) == ["0", "1", "2", "3"]  # VW logs have no action ids: positions name them
    assert vw.event_id[3] == records[3]["EventId"]


def test_a_hand_written_vw_record(tmp_path):
    line = {
        "_label_cost": -1.0,
        "_label_probability": 0.7,
        "_label_Action": 2,
        "_labelIndex": 1,
        "Timestamp": "2019-03-01T12:00:00.000Z",
        "Version": "1",
        "EventId": "abc",
        "a": [2, 1, 3],
        "c": {"shared": {"f": 1}, "_multi": [{"a": {"x": 1}}, {"a": {"x": 2}}, {"a": {"x": 3}}]},
        "p": [0.7, 0.2, 0.1],
        "VWState": {"m": "model-id"},
    }
    data = read_dsjson(write_lines(tmp_path / "one.json", [line]))
    assert data.action.tolist() == [1] and data.reward.tolist() == [1.0]
    np.testing.assert_allclose(data.pi_b[0], [0.2, 0.7, 0.1])
    assert data.feature_set(0).context == {"shared": {"f": 1}}
    assert data.timestamp[0] == pytest.approx(1551441600.0)


def test_unjoined_and_never_activated_records_are_left_out_and_counted(service_log):
    _, records, _ = service_log
    pending = {k: v for k, v in records[0].items() if k != "_label_cost"}
    inactive = json.loads(json.dumps(records[1]))
    inactive["_skipLearn"] = True
    data = from_records([pending, inactive, *records[2:10]])
    assert data.n == 8
    assert data.skipped == {"no reward joined": 1, "deferred, never activated": 1}


def test_broken_logs_name_the_line_and_what_to_fix(tmp_path, service_log):
    _, records, _ = service_log
    bad_json = tmp_path / "bad.dsjson"
    bad_json.write_bytes(orjson.dumps(records[0]) + b"\n{not json\n")
    with pytest.raises(LogFormatError, match=r"bad\.dsjson:2: not valid JSON"):
        read_dsjson(bad_json)
    missing = {k: v for k, v in records[0].items() if k != "p"}
    with pytest.raises(LogFormatError, match=r"miss\.dsjson:1: .*\bp\b"):
        read_dsjson(write_lines(tmp_path / "miss.dsjson", [missing]))
    wrong_p = dict(records[0], _label_probability=1.5)
    with pytest.raises(LogFormatError, match="_label_probability"):
        read_dsjson(write_lines(tmp_path / "p.dsjson", [wrong_p]))
    empty = tmp_path / "empty.dsjson"
    empty.write_text("\n")
    with pytest.raises(LogFormatError, match="no joined decisions"):
        read_dsjson(empty)
    with pytest.raises(FileNotFoundError, match="no log file"):
        read_dsjson(tmp_path / "nope.dsjson")


def test_obp_bandit_feedback(service_log):
    path, _, _ = service_log
    data = read_dsjson(path)
    feedback = data.to_obp_bandit_feedback(context_dim=16)
    n = data.n
    assert feedback["n_rounds"] == n and feedback["n_actions"] == 4
    assert feedback["action_ids"] == ["email", "push", "sms", "in_app"]
    assert feedback["context"].shape == (n, 16) and feedback["pi_b"].shape == (n, 4, 1)
    assert feedback["position"].tolist() == [0] * n
    np.testing.assert_allclose(
        feedback["pi_b"][np.arange(n), feedback["action"], 0], feedback["pscore"]
    )
    # obp's IPW, written the way obp computes it, equals ours
    pi_e = np.tile([0.7, 0.1, 0.1, 0.1], (n, 1))
    action_dist = obp_action_dist(data, pi_e)
    w = action_dist[np.arange(n), feedback["action"], feedback["position"]] / feedback["pscore"]
    assert (w * feedback["reward"]).mean() == pytest.approx(
        evaluate(data.ope_data(pi_e), ["ips"])["ips"].value
    )


# --- multi-slot ------------------------------------------------------------------------


def test_multislot_log_is_evaluated_as_a_whole(channel, tmp_path):
    config = {
        "name": "two-slots",
        "min_probability": 0.0,
        "slots": [
            {"name": "top", "policy": {"kind": "uniform"}},
            {"name": "side", "policy": {"kind": "uniform"}},
        ],
    }
    records, truth = service_records(
        channel, DecisionEngine.from_config(config), 3000, seed=9, slots=("top", "side")
    )
    data = read_dsjson(write_lines(tmp_path / "slots.dsjson", records))
    assert data.n == 6000 and data.is_multislot and data.slot_names == ["top", "side"]
    assert data.group is not None and int(data.group.max()) == 2999
    assert data.event_id[0] == data.event_id[1] == "ev9-0"

    fixed = make_candidate("always email", {"kind": "fixed", "action_id": "email"}, data)
    assert [s.name for s in fixed.config.slots or []] == ["top", "side"]
    report = counterfactual(data, [fixed], methods=["ips", "dr", "pseudo_inverse"], learn=False)
    app_value = 2 * truth[:, 0].mean()  # both slots show email
    for name, e in report.results[0].estimates.items():
        assert e.n == 3000  # decisions
        assert abs(e.value - app_value) <= 3.5 * e.stderr, (name, e, app_value)
    # evaluating the first slot only would see half the app's value
    first = data.take(np.flatnonzero(data.slot == 0))
    first.slot, first.group, first.slot_names = None, None, [None]
    single = evaluate(first.ope_data(np.tile([1.0, 0.0, 0.0, 0.0], (first.n, 1))), ["ips"])["ips"]
    assert single.ci_high < app_value * 0.75


def test_a_policy_must_serve_the_logs_slots(channel, tmp_path):
    config = {"slots": [{"name": "top", "policy": {"kind": "uniform"}}]}
    records, _ = service_records(
        channel, DecisionEngine.from_config(config), 5, seed=4, slots=("top",)
    )
    data = from_records(records)
    single = DecisionEngine.from_config({"policy": {"kind": "uniform"}})
    with pytest.raises(ValueError, match=r"does not serve the log's slot\(s\) \['top'\]"):
        target_pmfs(single, data)


def test_take_keeps_rows_and_features(service_log):
    data = read_dsjson(service_log[0])
    sub = data.take([5, 2])
    assert isinstance(sub, LoggedBandit) and sub.n == 2
    assert sub.event_id == [data.event_id[5], data.event_id[2]]
    assert sub.feature_set(0).vw_json() == data.feature_set(5).vw_json()
