"""Acceptance, end to end over real HTTP, for each example app: decisions → rewards → join →
learner → a new model published → the replica serves it."""

from __future__ import annotations

import httpx
import pytest

from banditrec.decision.record import META_KEY
from banditrec.eventlog import EventLog, connect
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest, example_request

# What each app's product would reward: a click, a conversion, an open.
REWARDED = {"content": "item-1", "channel": "push", "send_time": "h18"}


def _reward(app: str, action_id: str) -> float:
    if app == "content":
        return float(action_id < "item-2")  # item-0, item-1, item-10..item-19
    return float(action_id == REWARDED[app])


@pytest.mark.parametrize("app", ["content", "channel", "send_time", "journey"])
def test_decisions_rewards_join_learn_and_serve_the_new_model(
    banditrec_service: ServiceUnderTest, app: str
) -> None:
    svc = banditrec_service
    log = EventLog(connect(svc.redis_url))
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        before = http.get(f"/v1/apps/{app}").json()
        n = 30
        sent: dict[str, float] = {}
        for i in range(n):
            d = http.post(f"/v1/apps/{app}/decisions", json=example_request(app, i)).json()
            chosen = d["action_id"] if d["slots"] is None else d["slots"][1]["action_id"]
            value = _reward("channel" if app == "journey" else app, chosen)
            r = http.post(
                f"/v1/apps/{app}/rewards", json={"event_id": d["event_id"], "value": value}
            )
            assert r.json()["outcome"] == "accepted"
            sent[d["event_id"]] = value

        slots = 3 if app == "journey" else 1

        def served(app: str = app, slots: int = slots) -> bool:
            info = http.get(f"/v1/apps/{app}").json()
            learned = info["counters"].get("learned", 0) - before["counters"].get("learned", 0)
            return learned >= n * slots and info["served_model_version"] > before["model_version"]

        polling.wait_for(served, 30.0, f"{app}: a new model served")
        info = http.get(f"/v1/apps/{app}").json()

        # The joined log holds the rewards as sent (every slot of a journey event got it).
        joined = {}
        for _, record in log.joined.read(app, count=10_000):
            joined.setdefault(record[META_KEY]["event_id"], set()).add(record[META_KEY]["reward"])
        for event_id, value in sent.items():
            assert joined[event_id] == {value}
        assert info["online_reward"]["events"] >= n

        # The next decision is made with the new model (or a newer one: the learner goes on
        # publishing what it joins meanwhile, e.g. earlier decisions reaching their wait).
        fresh = http.post(f"/v1/apps/{app}/decisions", json=example_request(app, 99)).json()
        assert fresh["model_version"] >= info["served_model_version"] > before["model_version"]


def test_rollback_serves_an_earlier_model_again(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        models = http.get("/v1/apps/channel").json()["models"]
        if not models:
            pytest.skip("needs a published model (the end-to-end test publishes one)")
        oldest = min(m["version"] for m in models)
        r = http.patch("/v1/apps/channel", json={"rollback_to": oldest})
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["model_version"] > max(m["version"] for m in models)  # a new version...
        assert info["served_model_version"] == info["model_version"]  # ...served at once
        d = http.post("/v1/apps/channel/decisions", json=example_request("channel", 1)).json()
        assert d["model_version"] == info["model_version"]
