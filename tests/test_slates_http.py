"""Slates over real HTTP (Ray Serve → replica → Redis): the route, the log, rewards, the client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from banditrec import AppConfig
from banditrec.client import Client
from banditrec.eventlog import EventLog, connect
from tests.plugins.ray_cluster import ServiceUnderTest
from tests.polling import wait_for

APP = "feed-slates"
ACTIONS = [{"id": f"post-{i}", "features": {"topic": {"t": i % 3}}} for i in range(8)]


@pytest.fixture(scope="module")
def feed(banditrec_service: ServiceUnderTest) -> Iterator[httpx.Client]:
    log = EventLog(connect(banditrec_service.redis_url))
    log.configs.put(
        AppConfig(
            name=APP,
            policy={"kind": "vw_ccb"},
            slate={
                "positions": 3,
                "rules": {"exclude": ["post-7"], "groups": {"post-1": "partner"}},
                "exposure_floors": {"partner": 0.2},
            },
        )
    )
    with httpx.Client(
        base_url=banditrec_service.url, headers=banditrec_service.headers("admin"), timeout=10
    ) as http:
        wait_for(lambda: APP in http.get("/v1/apps").json()["apps"], 10, "the slate app")
        yield http
        log.drop_app(APP)
        wait_for(lambda: APP not in http.get("/v1/apps").json()["apps"], 10, "the app dropped")


def test_a_slate_is_logged_per_position_before_the_answer(feed, banditrec_service):
    body = {
        "event_id": "s1",
        "context": {"user": {"a": 1}},
        "actions": ACTIONS,
        "rules": {"pin": {"post-3": 2}},
    }
    r = feed.post(f"/v1/apps/{APP}/slates", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    shown = [p["action_id"] for p in d["slate"]]
    assert len(shown) == 3 == len(set(shown)) and "post-7" not in shown
    assert shown[1] == "post-3" and d["slate"][1]["probability"] == 1.0
    log = EventLog(connect(banditrec_service.redis_url))
    records = log.decisions.records(APP, "s1")
    assert [rec["_banditrec"]["position"] for rec in records] == [1, 2, 3]
    for rec, p in zip(records, d["slate"], strict=True):
        assert rec["_label_probability"] == pytest.approx(p["probability"])
    # a repeat is answered from the log; rewards go per position, or to every position
    assert feed.post(f"/v1/apps/{APP}/slates", json=body).json() == d
    one = feed.post(f"/v1/apps/{APP}/rewards", json={"event_id": "s1", "value": 1, "slot": "1"})
    assert one.json()["outcome"] == "accepted"
    every = feed.post(f"/v1/apps/{APP}/rewards", json={"event_id": "s1", "value": 0.5})
    assert every.json()["outcome"] == "accepted"
    # service-wide metrics: each replica adds its counters to Redis about once a second
    wait_for(
        lambda: f'banditrec_slate_exposure_total{{app="{APP}"' in feed.get("/metrics").text,
        30,
        "the exposure counter in /metrics",
    )


@pytest.mark.parametrize(
    "body, where",
    [
        ({"actions": ACTIONS, "positions": 20}, "positions"),
        ({"actions": ACTIONS, "rules": {"pin": {"nope": 1}}}, "nope"),
        ({"actions": ACTIONS, "rules": {"max_per_group": 0}}, "max_per_group"),
        ({"actions": [{"id": "a"}, {"id": "a"}]}, "duplicate"),
        ({"context": {"u": {"x": float("inf")}}, "actions": ACTIONS}, "JSON"),
    ],
)
def test_bad_slate_requests_get_a_4xx_saying_what_to_fix(feed, body, where):
    if where == "JSON":
        r = feed.post(
            f"/v1/apps/{APP}/slates",
            content=b'{"actions": [',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400
        return
    r = feed.post(f"/v1/apps/{APP}/slates", json=body)
    assert r.status_code == 422, r.text
    assert where in r.text


def test_the_client_decides_slates(feed, banditrec_service):
    with Client(banditrec_service.url, app=APP, api_key=banditrec_service.keys["admin"]) as c:
        d = c.decide_slate({"user": {"a": 2}}, ACTIONS, positions=4, event_id="client-1")
        assert [p.position for p in d.slate] == [1, 2, 3, 4]
        assert c.decide_slate({"user": {"a": 2}}, ACTIONS, positions=4, event_id="client-1") == d


@pytest.mark.parametrize("kind", ["vw", "vw_ccb"])
def test_the_learner_learns_a_slate_app_from_redis_per_position(event_log, app_name, kind):
    """Logged through Redis, rewarded per position, joined, learned by the app's learner,
    published and swapped into the serving engine: the rewarded post rises to the top."""
    from banditrec import DecisionEngine, Reward
    from banditrec.learner import Learner
    from banditrec.serving.watcher import ModelWatcher
    from banditrec.slates import SlateRequest

    config = AppConfig(
        name=app_name, policy={"kind": kind}, reward={"wait_seconds": 0.0}, min_probability=0.0
    )
    event_log.configs.put(config)
    serving = DecisionEngine(config)
    watcher = ModelWatcher(event_log, app_name, serving)
    learner = Learner(event_log, app_name)
    for t in range(150):
        request = SlateRequest(event_id=f"e{t}", actions=ACTIONS, positions=2)
        decision, records = serving.decide_slate_logged(request)
        event_log.decisions.write(app_name, records)
        rewards = [
            Reward(event_id=f"e{t}", value=float(p.action_id == "post-4"), slot=str(p.position))
            for p in decision.slate
        ]
        event_log.rewards.add_rewards(app_name, rewards)
    event_log.join.join_due(app_name, now=time.time() + 1)
    assert learner.learn_available() == 300  # two positions per slate
    learner.publish()
    assert watcher.poll() is True
    top = [
        serving.decide_slate(SlateRequest(event_id=f"a{i}", actions=ACTIONS, positions=2))
        .slate[0]
        .action_id
        for i in range(20)
    ]
    assert top.count("post-4") >= 16
