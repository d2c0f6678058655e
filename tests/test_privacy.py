"""Pseudonymized identifiers, refused contact details, opt-out; nothing raw in any store."""

from __future__ import annotations

from pathlib import Path

import pytest

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.record import META_KEY
from banditrec.decision.schema import DecisionRequest, Reward
from banditrec.eventlog import EmbeddedRedis, EventLog, connect
from banditrec.eventlog.export import export_joined
from banditrec.eventlog.keys import AppKeys
from banditrec.learner import Learner
from banditrec.privacy.keys import PseudonymKeys
from banditrec.privacy.pseudonymize import (
    PSEUDONYM_PATTERN,
    PrivacyError,
    Pseudonymizer,
    looks_like_contact,
)
from tests import polling

ACTIONS = [{"id": "a1", "features": {"topic": {"tech": 1}}}, {"id": "a2"}]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("alice@example.com", "an e-mail address"),
        ("+44 20 7946 0958", "a phone number"),
        ("(555) 123-4567", "a phone number"),
        ("555.123.4567", "a phone number"),
        ("2024-01-31", None),
        ("1234567", None),  # a bare number: an id or a count, not a phone number
        ("IN", None),
        ("a@b", None),
        ("+1", None),
    ],
)
def test_contact_detection(text: str, kind: str | None) -> None:
    assert looks_like_contact(text) == kind


def _engine(**privacy) -> DecisionEngine:
    engine = DecisionEngine.from_config({"name": "p", "privacy": privacy})
    engine.set_pseudonymizer(Pseudonymizer("p", b"k" * 32))
    return engine


def test_contact_values_refused_by_default_naming_the_field() -> None:
    engine = DecisionEngine.from_config({"name": "p"})
    request = DecisionRequest(context={"user": {"mail": "bob@example.org"}}, actions=ACTIONS)
    with pytest.raises(PrivacyError, match=r"context\.user\.mail: the value looks like an e-mail"):
        engine.decide_logged(request)
    with pytest.raises(PrivacyError, match="feature name"):
        engine.decide(DecisionRequest(context={"u": {"bob@example.org": 1}}, actions=ACTIONS))
    allowed = DecisionEngine.from_config({"name": "p", "privacy": {"contact_values": "allow"}})
    assert allowed.decide(request).action_id in ("a1", "a2")


def test_identifiers_and_contact_values_hashed_everywhere() -> None:
    engine = _engine(identifiers=["user.id"], contact_values="hash")
    request = DecisionRequest(
        context={"user": {"id": "alice", "phone": "+1 415 555 0100", "visits": 3}},
        actions=[{"id": "a1", "features": {"user": {"id": "alice"}}}, {"id": "a2"}],
    )
    _, (record,) = engine.decide_logged(request)
    user = record["c"]["user"]
    assert PSEUDONYM_PATTERN.match(user["id"]) and PSEUDONYM_PATTERN.match(user["phone"])
    assert user["visits"] == 3
    assert record["c"]["_multi"][0]["user"]["id"] == user["id"]
    assert record[META_KEY]["subject"] == user["id"]  # erasure finds records by it
    assert "alice" not in str(record) and "555" not in str(record)
    # stable under one key, different under another
    _, (again,) = engine.decide_logged(request)
    assert again["c"]["user"]["id"] == user["id"]
    other = _engine(identifiers=["user.id"], contact_values="hash")
    other.set_pseudonymizer(Pseudonymizer("p", b"x" * 32, 2))
    _, (rotated,) = other.decide_logged(request)
    assert rotated["c"]["user"]["id"] != user["id"] and rotated["c"]["user"]["id"].startswith(
        "ps2."
    )


def test_identifiers_without_a_key_are_refused_not_logged_raw() -> None:
    engine = DecisionEngine.from_config({"name": "p", "privacy": {"identifiers": ["user.id"]}})
    with pytest.raises(PrivacyError, match="no key"):
        engine.decide_logged(DecisionRequest(context={"user": {"id": "alice"}}, actions=ACTIONS))


def test_opt_out_serves_the_default_action_and_logs_nothing() -> None:
    engine = _engine(identifiers=["user.id"])
    request = DecisionRequest(context={"user": {"id": "alice"}}, actions=ACTIONS, opt_out=True)
    decision, records = engine.decide_logged(request)
    assert records == []
    assert (decision.action_id, decision.probability, decision.mode) == ("a1", 1.0, "opt_out")


def test_keys_are_per_app_rotatable_and_not_in_the_config(redis_client, app_name: str) -> None:
    keys = PseudonymKeys(redis_client)
    first = keys.current(app_name)
    assert first.version == 1 and keys.current(app_name) == first
    assert keys.rotate(app_name) == 2
    assert keys.current(app_name).version == 2
    assert [p.version for p in keys.all(app_name)] == [2, 1]
    assert first.pseudonym("alice") != keys.current(app_name).pseudonym("alice")
    log = EventLog(redis_client)
    log.configs.put(AppConfig(name=app_name, privacy={"identifiers": ["user.id"]}))
    stored = redis_client.get(AppKeys(app_name).config)
    assert first.key not in stored and first.key.hex().encode() not in stored


def _redis_bytes(client, app: str) -> bytes:
    """Every value of every key of the app, as bytes, whatever the key's type."""
    out = []
    for key in client.scan_iter(match=AppKeys(app).pattern, count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            out.append(client.get(key))
        elif kind == "hash":
            out += [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == "stream":
            out += [b"".join(k + v for k, v in fields.items()) for _, fields in client.xrange(key)]
        elif kind == "zset":
            out += client.zrange(key, 0, -1)
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "set":
            out += list(client.smembers(key))
    return b"\n".join(out)


def test_no_raw_identifier_in_redis_spool_export_or_model(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    server = restartable_redis
    client = connect(server.url)
    log = EventLog(client, spool_dir=tmp_path / "spool")
    app = "private"
    config = AppConfig(
        name=app,
        reward=RewardConfig(wait_seconds=0.0),
        privacy={"identifiers": ["user.id", "user.email"], "contact_values": "hash"},
    )
    log.configs.put(config)
    engine = DecisionEngine(config)
    engine.set_pseudonymizer(PseudonymKeys(client).current(app))
    raw = []

    def request(i: int) -> DecisionRequest:
        ids = (f"customer-{i:04d}", f"person{i:04d}@example.com", f"+1 415 555 {i:04d}")
        raw.extend(ids)
        return DecisionRequest(
            event_id=f"e{i}",
            context={"user": {"id": ids[0], "email": ids[1], "phone": ids[2], "age": i % 7}},
            actions=ACTIONS,
        )

    for i in range(60):
        _, records = engine.decide_logged(request(i))
        log.decisions.write(app, records)
    log.rewards.add_rewards(app, [Reward(event_id=f"e{i}", value=1.0) for i in range(0, 60, 2)])
    log.join.join_due(app, now=10**10)
    learner = Learner(log, app)
    learner.load()
    assert learner.step() == 60
    export = tmp_path / "export.dsjson"
    assert export_joined(log, app, export) == 60
    server.stop()  # an outage: the next decisions wait in the spool
    for i in range(60, 70):
        _, records = engine.decide_logged(request(i))
        log.decisions.write(app, records)
    spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("*") if p.is_file())
    assert b"e65" in spooled  # the spool holds the records ...
    server.start()
    stores = {
        "redis": _redis_bytes(client, app),
        "export": export.read_bytes(),
        "spool": spooled,
        "model": b"".join(m for m in engine.model_bytes().values()),
    }
    assert b"ps1." in stores["redis"] and b"ps1." in stores["export"] and b"ps1." in stores["spool"]
    for where, data in stores.items():
        found = [r for r in raw if r.encode() in data]
        assert not found, f"raw identifiers in {where}: {found[:3]}"
    polling.wait_for(lambda: not log.outage.spooling, 20.0, "the spool replayed")
    log.close()


def test_erasure_everywhere_with_a_receipt_then_learner_and_ope_run(
    restartable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    from banditrec.privacy.erasure import erase_spool, erase_subject, subject_pseudonyms
    from banditrec.replay import read_dsjson
    from banditrec.replay.registry import evaluate
    from banditrec.replay.target import target_pmfs

    server = restartable_redis
    client = connect(server.url)
    log = EventLog(client, spool_dir=tmp_path / "spool")
    app = "erase"
    config = AppConfig(
        name=app, reward=RewardConfig(wait_seconds=0.0), privacy={"identifiers": ["user.id"]}
    )
    log.configs.put(config)
    keys = PseudonymKeys(client)
    engine = DecisionEngine(config)
    engine.set_pseudonymizer(keys.current(app))
    users = ["alice", "bob", "carol"]

    def decide(i: int) -> None:
        request = DecisionRequest(
            event_id=f"e{i}", context={"user": {"id": users[i % 3], "n": i % 5}}, actions=ACTIONS
        )
        log.decisions.write(app, engine.decide_logged(request)[1])

    for i in range(60):  # joined, half of them learned from
        decide(i)
    log.join.join_due(app, now=10**10)
    learner = Learner(log, app)
    learner.load()
    assert learner.step() == 60
    keys.rotate(app)  # later decisions carry alice's new pseudonym
    engine.set_pseudonymizer(keys.current(app))
    for i in range(60, 72):  # pending
        decide(i)
    alice = subject_pseudonyms(keys, app, "alice")
    assert len(alice) == 2
    server.stop()
    for i in range(72, 84):  # spooled
        decide(i)
    assert erase_spool(log, alice) == 4
    server.start()
    polling.wait_for(lambda: not log.outage.spooling, 20.0, "the spool replayed")
    receipt = erase_subject(log, app, "alice", keys=keys)
    assert receipt.erased == {"pending": 4, "recently_joined": 20, "joined": 20, "spool": 0}
    assert receipt.key_versions == [1, 2] and "alice" not in str(receipt.as_dict())

    export = tmp_path / "after.dsjson"
    export_joined(log, app, export)
    stores = {"redis": _redis_bytes(client, app), "export": export.read_bytes()}
    for where, data in stores.items():
        assert not [p for p in alice if p.encode() in data], where
        assert subject_pseudonyms(keys, app, "bob")[0].encode() in data or where == "export"
    # the learner goes on past the erased entries, and OPE runs on what is left
    log.join.join_due(app, now=10**10)
    learner.load()
    assert learner.step() == 16  # bob's and carol's pending and replayed decisions
    data = read_dsjson(export)
    assert data.n == 40
    estimates = evaluate(data.ope_data(target_pmfs(DecisionEngine(config), data)), ["ips"])
    assert 0.0 <= estimates["ips"].value <= 1.0 + 1e-9
    log.close()


def test_dates_pass_and_slots_are_covered() -> None:
    engine = _engine(contact_values="hash")
    dated = DecisionRequest(context={"user": {"since": "2024-01-31"}}, actions=ACTIONS)
    _, (record,) = engine.decide_logged(dated)
    assert record["c"]["user"]["since"] == "2024-01-31"
    slotted = DecisionEngine.from_config({"name": "s", "slots": [{"name": "a"}, {"name": "b"}]})
    request = DecisionRequest(
        slots=[
            {"id": "a", "actions": ACTIONS},
            {
                "id": "b",
                "actions": [{"id": "x", "features": {"who": {"tel": "+33 1 23 45 67 89"}}}],
            },
        ]
    )
    with pytest.raises(PrivacyError, match=r"slots\[1\]\.actions\[0\]\.features\.who\.tel"):
        slotted.decide_logged(request)
