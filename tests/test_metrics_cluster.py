"""One Prometheus scrape gives the totals of the whole service, whichever replica answers:
two ingress replicas behind Serve's HAProxy, each counting its own requests, one Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from banditrec.eventlog import EmbeddedRedis, EventLog, connect
from banditrec.reporting import Reporter
from tests.plugins.ray_cluster import ServeInstance, example_request, service_settings
from tests.polling import wait_for

PREFIX = "/two"


@pytest.fixture(scope="module")
def two_replicas(ray_serve: ServeInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from ray import serve

    from banditrec.serving.deployment import INGRESS_ENV, IngressDeployment, seed_apps

    root = tmp_path_factory.mktemp("two-replicas")
    redis = EmbeddedRedis(root / "redis").start()
    settings, keys = service_settings(root / "keys.yaml")
    seed_apps(EventLog(connect(redis.url)), settings)
    ingress = IngressDeployment.options(
        num_replicas=2,
        ray_actor_options={"num_cpus": 0.1, "runtime_env": {"env_vars": INGRESS_ENV}},
    )
    app = ingress.bind(redis.url, settings.model_dump(mode="json"), False, None, None)
    serve.run(app, name="metrics-two", route_prefix=PREFIX)
    yield ray_serve.url + PREFIX, redis.url, {"Authorization": f"Bearer {keys['admin']}"}
    serve.delete("metrics-two")
    redis.stop()


def _value(text: str, sample: str) -> float | None:
    m = re.search(rf"^{re.escape(sample)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_one_scrape_gives_the_totals_of_both_replicas(two_replicas) -> None:
    url, redis_url, headers = two_replicas
    n = 60
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        wait_for(lambda: http.get("/readyz").status_code == 200, 90, "both replicas ready")
        wait_for(
            lambda: _value(http.get("/metrics").text, "banditrec_replicas") == 2.0,
            30,
            "both replicas flushing their counters",
        )
        total_reward = 0.0
        for i in range(n):
            d = http.post("/v1/apps/content/decisions", json=example_request("content", i)).json()
            value = float(i % 3 == 0)
            total_reward += value
            r = http.post(
                "/v1/apps/content/rewards", json={"event_id": d["event_id"], "value": value}
            )
            assert r.json()["outcome"] == "accepted"
        decided = 'banditrec_decisions_total{app="content",mode="online"}'
        accepted = 'banditrec_rewards_total{app="content",outcome="accepted"}'
        timed = 'banditrec_request_seconds_count{route="decide"}'

        def flushed() -> bool:
            text = http.get("/metrics").text
            return all(_value(text, s) == n for s in (decided, accepted, timed))

        wait_for(flushed, 30, "the counters of both replicas in one scrape")
        # the joins and the report of the learner deployment, done here by the test
        log = EventLog(connect(redis_url))
        wait_for(
            lambda: (
                log.join.join_due("content", now=2e9) == 0
                and log.joined.stats("content")["joined"] >= n
            ),
            30,
        )
        Reporter(log, "content").catch_up()
        for _ in range(10):  # whichever replica answers, the same totals
            text = http.get("/metrics").text
            assert _value(text, decided) == n
            assert _value(text, accepted) == n
            assert (
                _value(text, 'banditrec_joined_decisions_total{app="content",arm="learned"}') == n
            )
            assert (
                _value(text, 'banditrec_reward_sum_total{app="content",arm="learned"}')
                == total_reward
            )
            assert _value(text, 'banditrec_eventlog_total{app="content",counter="decisions"}') == n
            assert _value(text, timed) == n
