"""Processes of the running service killed under load (SIGKILL, as the OOM killer or a
crash would): the learner pool comes back and every joined event ends up in the model
exactly once; with the ingress replica killed, every decision the client got an answer
for is in the log, and the replacement replica serves."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import httpx
import psutil

from banditrec.client import Client, RetryPolicy, ServiceError
from banditrec.eventlog import EventLog, connect
from tests import polling
from tests.plugins.ray_cluster import ServiceUnderTest, example_request

APP = "channel"


def wait_for(predicate, what: str) -> None:
    polling.wait_for(predicate, 120.0, what)


def replica_pids(deployment: str) -> list[int]:
    """Live replicas of this session's Ray (the test process's own tree, not another Ray)."""
    marker = f"ServeReplica:banditrec:{deployment}"
    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if marker in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return pids


def traffic(client: Client, n: int, start: int, acknowledged: list[str]) -> None:
    for i in range(start, start + n):
        body = example_request(APP, i)
        try:
            d = client.decide(body["context"], body["actions"])
        except (ServiceError, httpx.HTTPError):
            continue  # not acknowledged: the product may ask again, with a new event
        acknowledged.append(d.event_id)
        with contextlib.suppress(ServiceError, httpx.HTTPError):
            client.reward(d.event_id, float(i % 2))


def test_the_learner_killed_under_load_comes_back_and_learns_each_event_once(
    banditrec_service: ServiceUnderTest,
) -> None:
    log = EventLog(connect(banditrec_service.redis_url))
    (learner,) = replica_pids("LearnerPool")
    acknowledged: list[str] = []
    with Client(banditrec_service.url, app=APP, api_key=banditrec_service.keys["admin"]) as c:
        thread = threading.Thread(target=traffic, args=(c, 300, 0, acknowledged))
        thread.start()
        wait_for(lambda: len(acknowledged) >= 100, "decisions before the kill")
        os.kill(learner, signal.SIGKILL)
        thread.join()
    assert len(acknowledged) == 300  # deciding never depended on the learner
    wait_for(lambda: replica_pids("LearnerPool") not in ([], [learner]), "a new learner pool")
    for event_id in acknowledged[::20]:
        assert log.decisions.records(APP, event_id), event_id

    def caught_up() -> bool:
        stats = log.joined.stats(APP)
        model = log.models.latest(APP)
        consumed = stats.get("learned", 0) + stats.get("skipped", 0)
        return (
            stats["pending_events"] == 0
            and model is not None
            and consumed == stats["joined"] == model.n_learned
        )

    wait_for(caught_up, "the new learner to learn every joined event")


def test_the_ingress_replica_killed_under_load_loses_no_acknowledged_decision(
    banditrec_service: ServiceUnderTest,
) -> None:
    log = EventLog(connect(banditrec_service.redis_url))
    (replica,) = replica_pids("Ingress")
    acknowledged: list[str] = []
    retry = RetryPolicy(attempts=20, backoff_s=0.1, max_backoff_s=1.0)
    with Client(
        banditrec_service.url, app=APP, api_key=banditrec_service.keys["admin"], retry=retry
    ) as c:
        thread = threading.Thread(target=traffic, args=(c, 200, 1000, acknowledged))
        thread.start()
        wait_for(lambda: len(acknowledged) >= 50, "decisions before the kill")
        os.kill(replica, signal.SIGKILL)
        thread.join()
        wait_for(lambda: replica_pids("Ingress") not in ([], [replica]), "a new replica")
        body = example_request(APP, 5000)
        wait_for(lambda: c.decide(body["context"], body["actions"]) is not None, "serving again")
    assert len(acknowledged) > 50
    missing = [e for e in acknowledged if not log.decisions.records(APP, e)]
    assert not missing, f"{len(missing)} acknowledged decisions not in the log"
