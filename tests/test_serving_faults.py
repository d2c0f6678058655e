"""Faults under load, through the replica's HTTP API (the app a Serve replica runs, served
by uvicorn here so the test owns its Redis and can stop it): readiness and degraded states
while Redis is away, and every accepted decision and reward joined exactly once across a
Redis restart."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from banditrec.config import AppConfig, RewardConfig
from banditrec.eventlog import EmbeddedRedis, EventLog, connect
from banditrec.eventlog.server import free_port
from banditrec.learner import AppWorker
from banditrec.serving.app import create_api
from banditrec.serving.service import DecisionService
from banditrec.serving.settings import ServiceSettings
from tests import polling
from tests.plugins.ray_cluster import example_request

APP = "content"

# the replica that answers adds its id as a label while Redis answers (reporting.prometheus)
_SPOOLING = r'banditrec_degraded\{{app="",reason="spooling"(,replica="[^"]*")?\}} {value}'


def wait_for(predicate, what: str) -> None:
    polling.wait_for(predicate, 30.0, what)


@dataclass
class Replica:
    url: str
    service: DecisionService
    log: EventLog


@pytest.fixture
def replica(restartable_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[Replica]:
    log = EventLog(connect(restartable_redis.url), spool_dir=tmp_path / "spool")
    log.configs.put(AppConfig(name=APP, reward=RewardConfig(wait_seconds=1.0, aggregation="sum")))
    service = DecisionService(log, ServiceSettings(), open_access=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_api(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.started, "the HTTP server")
    yield Replica(url, service, log)
    server.should_exit = True
    thread.join(timeout=10)
    service.close()
    log.close()


def test_while_redis_is_away_the_replica_decides_ready_and_says_it_is_degraded(
    replica: Replica, restartable_redis: EmbeddedRedis
) -> None:
    http = httpx.Client(base_url=replica.url, timeout=10)
    wait_for(lambda: http.get("/readyz").status_code == 200, "ready")
    assert http.get("/healthz").json()["status"] == "ok"
    restartable_redis.stop()
    r = http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP, 1))
    assert r.status_code == 200, r.text  # spooled
    wait_for(
        lambda: "event_log_unreachable" in http.get("/healthz").json()["degraded"],
        "the replica to notice Redis is gone",
    )
    health = http.get("/healthz").json()
    assert health["status"] == "degraded" and "spooling" in health["degraded"]
    assert http.get("/readyz").status_code == 200  # it can decide: readiness holds
    metrics = http.get("/metrics").text
    assert re.search(_SPOOLING.format(value="1.0"), metrics)
    restartable_redis.start()
    wait_for(lambda: http.get("/healthz").json()["status"] == "ok", "health to come back")
    info = http.get(f"/v1/apps/{APP}").json()
    assert info["health"] == {"status": "ok", "degraded": [], "details": {}}
    assert info["counters"]["decisions"] == 1
    wait_for(
        lambda: re.search(_SPOOLING.format(value="0.0"), http.get("/metrics").text),
        "the metric to follow",
    )


def test_redis_restarted_under_load_every_decision_and_reward_is_joined_once(
    replica: Replica, restartable_redis: EmbeddedRedis
) -> None:
    worker = AppWorker(replica.log, APP).start()
    http = httpx.Client(base_url=replica.url, timeout=10)
    sent: dict[str, float] = {}  # event id -> reward value, for every accepted pair
    errors: list[str] = []
    stop = threading.Event()

    def product() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            r = http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP, i))
            if r.status_code != 200:
                errors.append(r.text)
                continue
            event_id, value = r.json()["event_id"], float(i % 3)
            r = http.post(f"/v1/apps/{APP}/rewards", json={"event_id": event_id, "value": value})
            if r.status_code != 200 or r.json()["outcome"] not in ("accepted", "spooled"):
                errors.append(r.text)
                continue
            sent[event_id] = value

    thread = threading.Thread(target=product)
    thread.start()
    try:
        wait_for(lambda: len(sent) >= 100, "decisions before the outage")
        restartable_redis.stop()
        wait_for(lambda: replica.log.outage.spooling, "spooling")
        at_stop = len(sent)
        wait_for(lambda: len(sent) >= at_stop + 100, "decisions during the outage")
        restartable_redis.start()
        wait_for(lambda: not replica.log.outage.spooling, "the spool replayed")
        after = len(sent)
        wait_for(lambda: len(sent) >= after + 100, "decisions after the outage")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    wait_for(
        lambda: replica.log.joined.stats(APP).get("joined", 0) == len(sent), "every decision joined"
    )
    joined = {
        r["_banditrec"]["event_id"]: r for _, r in replica.log.joined.read(APP, count=100_000)
    }
    assert len(joined) == len(sent)
    assert {e: r["_banditrec"]["reward"] for e, r in joined.items()} == sent
    worker.stop()
