"""The HTTP API over real HTTP: Ray Serve (HAProxy ingress) → replica → Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from banditrec.eventlog import EventLog
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest, example_request


@pytest.fixture
def restore_config(admin_http: httpx.Client) -> Iterator[None]:
    """Put the content app's config back as it was after a test that patches it."""
    before = admin_http.get("/v1/apps/content").json()["config"]
    yield
    assert admin_http.patch("/v1/apps/content", json=before).status_code == 200


def _decide(admin_http: httpx.Client, app: str, i: int = 0, **extra: object) -> dict:
    r = admin_http.post(f"/v1/apps/{app}/decisions", json=example_request(app, i, **extra))
    assert r.status_code == 200, r.text
    return r.json()


def test_decision_is_logged_before_the_answer(
    admin_http: httpx.Client, service_event_log: EventLog
) -> None:
    d = _decide(admin_http, "content", 1)
    ids = [a["id"] for a in example_request("content", 1)["actions"]]
    assert d["action_id"] in ids
    assert d["ranking"][0]["id"] == d["action_id"]
    assert sorted(r["id"] for r in d["ranking"]) == sorted(ids)
    assert d["probability"] == pytest.approx(d["ranking"][0]["probability"])
    assert sum(r["probability"] for r in d["ranking"]) == pytest.approx(1.0)
    assert min(r["probability"] for r in d["ranking"]) >= 0.01 - 1e-9  # the app's floor
    record = service_event_log.decisions.get("content", d["event_id"])
    assert record is not None
    assert record["_label_probability"] == pytest.approx(d["probability"])
    assert record["_banditrec"]["action_ids"][record["_labelIndex"]] == d["action_id"]


def test_same_event_id_twice_answers_the_same_decision_logged_once(
    admin_http: httpx.Client, service_event_log: EventLog
) -> None:
    before = service_event_log.joined.stats("content")
    event_id = f"repeat-{uuid.uuid4().hex}"
    first = _decide(admin_http, "content", 2, event_id=event_id)
    # Offered differently the second time: the logged decision still wins.
    body = example_request("content", 3, event_id=event_id)
    second = admin_http.post("/v1/apps/content/decisions", json=body).json()
    assert second == first
    after = service_event_log.joined.stats("content")
    assert after["decisions"] - before.get("decisions", 0) == 1
    assert after["repeated_event_ids"] - before.get("repeated_event_ids", 0) == 1


def test_batch_decides_and_logs_every_request(
    admin_http: httpx.Client, service_event_log: EventLog
) -> None:
    requests = [example_request("channel", i) for i in range(100)]
    r = admin_http.post("/v1/apps/channel/decisions:batch", json={"requests": requests})
    assert r.status_code == 200, r.text
    decisions = r.json()["decisions"]
    assert len(decisions) == 100
    assert len({d["event_id"] for d in decisions}) == 100
    for d in decisions[::10]:
        assert service_event_log.decisions.get("channel", d["event_id"]) is not None
        assert d["action_id"] in {"email", "push", "sms", "in_app"}


def test_multi_slot_decision_has_one_action_and_probability_per_slot(
    admin_http: httpx.Client, service_event_log: EventLog
) -> None:
    d = _decide(admin_http, "journey", 4)
    assert d["action_id"] is None
    slots = {s["slot"]: s for s in d["slots"]}
    assert set(slots) == {"content", "channel", "send_time"}
    assert slots["channel"]["action_id"] in {"email", "push", "sms", "in_app"}
    assert slots["send_time"]["action_id"].startswith("h")
    for s in slots.values():
        assert 0 < s["probability"] <= 1
        assert s["ranking"][0]["id"] == s["action_id"]
    records = service_event_log.decisions.records("journey", d["event_id"])
    assert {r["_banditrec"]["slot"] for r in records} == set(slots)


def test_rewards_single_and_batch_report_their_outcomes(admin_http: httpx.Client) -> None:
    a, b = _decide(admin_http, "content", 5), _decide(admin_http, "content", 6)
    one = admin_http.post(
        "/v1/apps/content/rewards", json={"event_id": a["event_id"], "value": 1.0}
    )
    assert one.status_code == 200
    assert one.json()["outcome"] == "accepted"
    batch = admin_http.post(
        "/v1/apps/content/rewards",
        json={
            "rewards": [{"event_id": b["event_id"], "value": 0.5}, {"event_id": "nope", "value": 1}]
        },
    )
    assert batch.status_code == 200
    outcomes = [o["outcome"] for o in batch.json()["outcomes"]]
    assert outcomes[0] == "accepted"
    assert outcomes[1] in {"unknown_event", "early"}  # kept aside, counted


def test_deferred_event_is_activated_once_known(admin_http: httpx.Client) -> None:
    d = _decide(admin_http, "content", 7, deferred=True)
    r = admin_http.post(f"/v1/apps/content/events/{d['event_id']}/activate")
    assert r.status_code == 200
    assert r.json() == {"event_id": d["event_id"], "activated": True}
    missing = admin_http.post("/v1/apps/content/events/never-decided/activate")
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown event"


def _train(admin_http: httpx.Client, app: str, n: int = 40) -> None:
    """Rewarded decisions, then wait until the replica serves a model learned from them."""
    start = admin_http.get(f"/v1/apps/{app}").json()["model_version"]
    rewards = []
    for i in range(n):
        d = _decide(admin_http, app, 100 + i)
        rewards.append({"event_id": d["event_id"], "value": float(d["action_id"] < "item-25")})
    assert admin_http.post(f"/v1/apps/{app}/rewards", json={"rewards": rewards}).status_code == 200

    def learned() -> bool:
        info = admin_http.get(f"/v1/apps/{app}").json()
        return info["served_model_version"] > start and info["counters"].get("learned", 0) >= n

    polling.wait_for(learned, 30.0, "a model learned from the rewards")


def test_patch_exploration_takes_effect_on_the_next_request(
    admin_http: httpx.Client, restore_config: None
) -> None:
    _train(admin_http, "content")  # an untrained model ties every action: greedy would look uniform
    r = admin_http.patch("/v1/apps/content", json={"policy": {"explorer": {"epsilon": 1.0}}})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["policy"]["explorer"] == {"type": "epsilon", "epsilon": 1.0}
    probs = [a["probability"] for a in _decide(admin_http, "content", 8)["ranking"]]
    assert probs == pytest.approx([0.1] * 10)  # fully uniform
    r = admin_http.patch(
        "/v1/apps/content", json={"policy": {"explorer": {"epsilon": 0.0}}, "min_probability": 0.0}
    )
    assert r.status_code == 200, r.text
    top = _decide(admin_http, "content", 8)["ranking"][0]["probability"]
    assert top == pytest.approx(1.0)  # greedy: no exploration left


def test_patch_mode_logging_serves_the_default_action(
    admin_http: httpx.Client, restore_config: None
) -> None:
    r = admin_http.patch("/v1/apps/content", json={"mode": "logging"})
    assert r.status_code == 200
    d = _decide(admin_http, "content", 9)
    first_offered = example_request("content", 9)["actions"][0]["id"]
    assert d["mode"] == "logging"
    best = max(d["ranking"], key=lambda a: a["probability"])
    assert best["id"] == first_offered  # the product's default: the first action offered
    assert best["probability"] == pytest.approx(1 - 9 * 0.01)  # only the floor explores


def test_patch_rejects_bad_values_with_the_field(admin_http: httpx.Client) -> None:
    r = admin_http.patch("/v1/apps/content", json={"policy": {"explorer": {"epsilon": 2}}})
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["detail"]]
    assert any("epsilon" in loc for loc in locs), locs
    r = admin_http.patch("/v1/apps/content", json={"name": "other"})
    assert r.status_code == 422
    r = admin_http.patch("/v1/apps/content", json={"rollback_to": 10_000})
    assert r.status_code == 422
    assert "not kept" in r.text


def test_app_listing_and_info(
    admin_http: httpx.Client, banditrec_service: ServiceUnderTest
) -> None:
    apps = admin_http.get("/v1/apps").json()["apps"]
    assert {"content", "channel", "send_time", "journey"} <= set(apps)
    mine = httpx.get(
        banditrec_service.url + "/v1/apps", headers=banditrec_service.headers("everything_channel")
    ).json()["apps"]
    assert mine == ["channel"]
    info = admin_http.get("/v1/apps/content").json()
    assert info["name"] == "content"
    assert info["config"]["policy"]["kind"] == "vw"
    assert info["counters"]["decisions"] >= 1
    assert set(info["online_reward"]) == {"events", "mean", "ci95"}


def test_health_readiness_metrics_and_docs(admin_http: httpx.Client) -> None:
    health = admin_http.get("/healthz").json()
    assert health["degraded"] == [] and set(health["apps"]) >= {"content", "channel"}
    ready = admin_http.get("/readyz")
    assert ready.status_code == 200
    assert "content" in ready.json()["apps"]
    _decide(admin_http, "send_time", 1)
    names = (
        "banditrec_decisions_total",
        "banditrec_rewards_total",
        "banditrec_errors_total",
        "banditrec_model_version",
        "banditrec_eventlog_total",
        "banditrec_replicas",
        "banditrec_join_lag_seconds",
        "banditrec_learner_lag_events",
        "banditrec_request_seconds",
    )
    # The gauges refresh every second: wait for the first refresh after the decision.
    sample = 'banditrec_decisions_total{app="send_time",mode="online"}'

    def refreshed() -> bool:
        text = admin_http.get("/metrics").text
        return sample in text and all(name in text for name in names)

    polling.wait_for(refreshed, 30.0, "the gauges")
    text = admin_http.get("/metrics").text
    for name in names:
        assert name in text, name
    assert sample in text
    assert "swagger" in admin_http.get("/docs").text.lower()
    schema = admin_http.get("/openapi.json").json()
    assert "/v1/apps/{app}/decisions:batch" in schema["paths"]
    assert "DecisionRequest" in schema["components"]["schemas"]
    for path, method in [
        ("/v1/apps/{app}/decisions", "post"),
        ("/v1/apps/{app}/decisions:batch", "post"),
        ("/v1/apps/{app}/rewards", "post"),
        ("/v1/apps/{app}", "get"),
    ]:  # every route under an app documents the app path parameter exactly once
        params = schema["paths"][path][method]["parameters"]
        assert [p["name"] for p in params if p["in"] == "path"] == ["app"], (path, params)


def test_openapi_documents_exactly_the_routes_served(admin_http: httpx.Client) -> None:
    """The paths come from the FastAPI routes themselves; the table of route docs in
    serving/openapi.py is keyed by operation id, so an entry no route uses is drift."""
    from banditrec.serving.openapi import _ROUTES

    schema = admin_http.get("/openapi.json").json()
    served = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    assert set(_ROUTES) <= served, set(_ROUTES) - served
    undocumented = [
        f"{method.upper()} {path}"
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if not op.get("summary") or "200" not in op["responses"]
    ]
    assert not undocumented
