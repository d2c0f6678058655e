"""Poison over real HTTP: unicode namespaces VW once crashed on are served and learned,
what VW cannot take is refused with a 4xx, and an event the learner cannot learn is
quarantined (listed by the API) while learning goes on."""

from __future__ import annotations

import uuid

import httpx

from banditrec.eventlog import AppKeys, EventLog, connect
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest, example_request

APP = "content"


def _counters(http: httpx.Client) -> dict[str, int]:
    got = http.get(f"/v1/apps/{APP}")
    assert got.status_code == 200, got.text
    return got.json()["counters"]


def _decide_and_reward(http: httpx.Client, body: dict) -> str:
    d = http.post(f"/v1/apps/{APP}/decisions", json=body)
    assert d.status_code == 200, d.text
    event_id = d.json()["event_id"]
    r = http.post(f"/v1/apps/{APP}/rewards", json={"event_id": event_id, "value": 1})
    assert r.json()["outcome"] == "accepted"
    return event_id


def test_unicode_namespaces_are_served_logged_escaped_and_learned(
    banditrec_service: ServiceUnderTest,
) -> None:
    svc = banditrec_service
    log = EventLog(connect(svc.redis_url))
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        before = _counters(http)
        body = example_request(APP, 5)
        body["context"]["用户"] = {"城市": "北京", "年龄": 30}
        body["actions"][0]["features"]["é"] = {"x": 1}
        event_id = _decide_and_reward(http, body)
        c = log.decisions.get(APP, event_id)["c"]
        assert c["~用户"] == {"城市": "北京", "年龄": 30} and "~é" in c["_multi"][0]
        polling.wait_for(
            lambda: _counters(http).get("learned", 0) > before.get("learned", 0),
            60,
            "the learner to learn the unicode event",
        )
        assert _counters(http).get("quarantined", 0) == before.get("quarantined", 0)
        # The replica that decided it is alive and still deciding.
        again = http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP, 6))
        assert again.status_code == 200


def test_what_vw_cannot_take_is_a_4xx_saying_why(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        for where, change, needle in [
            ("context", {"u": {"a\x00b": 1}}, "NUL"),
            ("context", {"u": {"f": "x\x00"}}, "NUL"),
            ("context", {"~用户": {"a": 1}}, "reserved"),
            ("context", {"_u": {"a": 1}}, "must be non-empty and not start with '_'"),
        ]:
            body = example_request(APP, 7)
            body[where].update(change)
            r = http.post(f"/v1/apps/{APP}/decisions", json=body)
            assert r.status_code == 422, r.text
            assert needle in r.text, r.text
        body = example_request(APP, 7)
        body["actions"][0]["id"] = "item\x00x"
        r = http.post(f"/v1/apps/{APP}/decisions", json=body)
        assert r.status_code == 422 and "NUL" in r.text, r.text


def test_a_poison_event_is_quarantined_listed_and_learning_goes_on(
    banditrec_service: ServiceUnderTest,
) -> None:
    svc = banditrec_service
    log = EventLog(connect(svc.redis_url))
    poison = f"poison-{uuid.uuid4().hex}"
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        before = _counters(http)
        # Something wrote a record no learner can read (a bug elsewhere, a manual XADD).
        sid = log.client.xadd(AppKeys(APP).joined, {"h": f"{poison}||1|1|1|0", "rec": b"{not json"})
        try:
            _quarantined_and_learning_goes_on(http, poison, before, svc.keys["decide"])
        finally:  # the deployment is shared: other tests read the joined stream whole
            log.client.xdel(AppKeys(APP).joined, sid)


def _quarantined_and_learning_goes_on(
    http: httpx.Client, poison: str, before: dict, decide_key: str
) -> None:

    def listed() -> bool:
        got = http.get(f"/v1/apps/{APP}/quarantine", params={"limit": 10})
        assert got.status_code == 200, got.text
        return poison in [e["event_id"] for e in got.json()["entries"]]

    polling.wait_for(listed, 60, "the poison event in the quarantine")
    entry = next(
        e
        for e in http.get(f"/v1/apps/{APP}/quarantine").json()["entries"]
        if e["event_id"] == poison
    )
    assert entry["record"] == "{not json" and entry["why"]
    _decide_and_reward(http, example_request(APP, 8))
    polling.wait_for(
        lambda: _counters(http).get("learned", 0) > before.get("learned", 0),
        60,
        "learning past the poison event",
    )
    assert _counters(http)["quarantined"] > before.get("quarantined", 0)
    assert http.get(f"/v1/apps/{APP}/quarantine", params={"limit": 0}).status_code == 422
    who = {"Authorization": f"Bearer {decide_key}"}
    assert http.get(f"/v1/apps/{APP}/quarantine", headers=who).status_code == 403
