"""Explanations, opt-out, pseudonymization, erasure, key rotation and the audit trail over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from banditrec.eventlog import EventLog
from tests.plugins.ray_cluster import ServiceUnderTest, example_request

APP = "send_time"


@pytest.fixture
def private_app(admin_http: httpx.Client) -> Iterator[None]:
    """send_time with user.id declared an identifier; its config restored afterwards."""
    before = admin_http.get(f"/v1/apps/{APP}").json()["config"]
    patch = {"privacy": {"identifiers": ["user.id"], "retention": {"max_events": 50_000}}}
    r = admin_http.patch(f"/v1/apps/{APP}", json=patch)
    assert r.status_code == 200, r.text
    yield
    assert admin_http.patch(f"/v1/apps/{APP}", json=before).status_code == 200


def _body(i: int, user: str | None = None, **extra: object) -> dict:
    body = example_request(APP, i, event_id=f"pa-{uuid.uuid4().hex}", **extra)
    if user is not None:
        body["context"]["user"]["id"] = user
    return body


def test_explain_on_request_only(admin_http: httpx.Client) -> None:
    plain = admin_http.post(f"/v1/apps/{APP}/decisions", json=_body(1)).json()
    assert "explanations" not in plain
    r = admin_http.post(f"/v1/apps/{APP}/decisions", json=_body(2, explain=True))
    assert r.status_code == 200, r.text
    d = r.json()
    (e,) = d["explanations"]
    assert e["chosen"] == d["action_id"] and e["version"] == 1
    assert e["exploratory"] == (e["chosen"] != e["greedy"])
    assert set(e["probabilities"]) == {a["id"] for a in _body(2)["actions"]}


def test_opt_out_is_served_the_default_and_not_logged(
    admin_http: httpx.Client, service_event_log: EventLog
) -> None:
    body = _body(3, opt_out=True)
    d = admin_http.post(f"/v1/apps/{APP}/decisions", json=body).json()
    assert (d["action_id"], d["probability"], d["mode"]) == (
        body["actions"][0]["id"],
        1.0,
        "opt_out",
    )
    assert service_event_log.decisions.get(APP, body["event_id"]) is None


def test_contact_details_refused_with_the_field_named(admin_http: httpx.Client) -> None:
    body = _body(4)
    body["context"]["user"]["mail"] = "someone@example.com"
    r = admin_http.post(f"/v1/apps/{APP}/decisions", json=body)
    assert r.status_code == 422
    assert "context.user.mail" in r.text and "someone@example.com" not in r.text


def test_pseudonymized_erased_rotated_and_audited(
    admin_http: httpx.Client,
    service_event_log: EventLog,
    banditrec_service: ServiceUnderTest,
    private_app: None,
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    assert service_event_log.configs.retention(APP)[0] == 50_000
    ids = []
    for i in range(3):
        body = _body(10 + i, user)
        r = admin_http.post(f"/v1/apps/{APP}/decisions", json=body)
        assert r.status_code == 200, r.text
        ids.append(body["event_id"])
    record = service_event_log.decisions.get(APP, ids[0])
    assert record is not None and user not in str(record)
    assert record["_banditrec"]["subject"].startswith("ps")

    r = admin_http.post(f"/v1/apps/{APP}/erasures", json={"subject": user})
    assert r.status_code == 200, r.text
    receipt = r.json()
    erased = receipt["erased"]
    assert erased["pending"] + erased["recently_joined"] + erased["joined"] >= 3
    assert all(service_event_log.decisions.get(APP, e) is None for e in ids)

    r = admin_http.post(f"/v1/apps/{APP}/pseudonym-keys:rotate")
    assert r.status_code == 200 and r.json()["version"] >= 2

    entries = admin_http.get(f"/v1/apps/{APP}/audit", params={"limit": 20}).json()["entries"]
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["key_rotation", "erasure", "config_change"]
    admin_key_id = entries[0]["actor"]
    assert admin_key_id not in ("", "open")
    assert entries[1]["detail"]["id"] == receipt["id"] and user not in str(entries)
    assert entries[2]["detail"]["patch"]["privacy"]["identifiers"] == ["user.id"]
    only = admin_http.get(f"/v1/apps/{APP}/audit", params={"action": "erasure"}).json()["entries"]
    assert {e["action"] for e in only} == {"erasure"}
    assert admin_http.get(f"/v1/apps/{APP}/audit", params={"limit": 0}).status_code == 422
    assert admin_http.post(f"/v1/apps/{APP}/erasures", json={"subject": ""}).status_code == 422
    other = banditrec_service.headers("decide")
    assert admin_http.get(f"/v1/apps/{APP}/audit", headers=other).status_code == 403


def test_feature_importance_on_the_apps_own_logs(
    admin_http: httpx.Client, service_event_log: EventLog
) -> None:
    from tests import polling

    before = service_event_log.joined.stats(APP).get("joined", 0)
    for start in range(0, 300, 100):
        requests = [_body(1000 + i) for i in range(start, start + 100)]
        r = admin_http.post(f"/v1/apps/{APP}/decisions:batch", json={"requests": requests})
        assert r.status_code == 200, r.text
        decisions = r.json()["decisions"]
        rewards = [
            {"event_id": d["event_id"], "value": float(d["action_id"] in ("h18", "h20"))}
            for d in decisions
        ]
        assert (
            admin_http.post(f"/v1/apps/{APP}/rewards", json={"rewards": rewards}).status_code == 200
        )
    polling.wait_for(
        lambda: service_event_log.joined.stats(APP).get("joined", 0) >= before + 300,
        30.0,
        "300 events joined",
    )
    r = admin_http.get(f"/v1/apps/{APP}/feature-importance", params={"rows": 300, "method": "ips"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["n_rows"] == 300 and report["method"] == "ips"
    names = {n["namespace"] for n in report["namespaces"]}
    assert {"user", "day", "hour"} <= names
    for n in report["namespaces"]:
        assert n["ci_low"] <= n["value_lost"] <= n["ci_high"]
    bad = admin_http.get(f"/v1/apps/{APP}/feature-importance", params={"rows": 5})
    assert bad.status_code == 422 and "rows" in bad.text
