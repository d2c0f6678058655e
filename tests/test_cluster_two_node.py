"""Scale-out on a real two-node Ray cluster: a head and a worker started with `ray start`
on this machine (one CPU each), the application deployed from the Serve config file with
one ingress replica per node, a 3-master Redis Cluster behind.

Decisions are served from both nodes and each is joined and learned exactly once; the
worker node is then killed under load, and no decision or reward the service accepted is
lost. The cluster is this test's own (its own ports and files): the session's Ray is not
touched.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import yaml

from banditrec.eventlog import AppKeys, EventLog, connect
from banditrec.eventlog.records import joined_header
from banditrec.eventlog.server import free_port
from banditrec.serving.runner import wait_ready
from banditrec.serving.settings import load_settings
from tests.plugins.ray_cluster import example_request
from tests.plugins.ray_nodes import LocalRayCluster
from tests.polling import wait_for

APP = "channel"
NODE = "x-banditrec-node"


@dataclass
class Load:
    """Decision + reward pairs from a few threads; a failed call is sent again with the
    same event id (decisions are idempotent per event id, rewards aggregate with `max`)."""

    url: str
    decided: dict[str, str] = field(default_factory=dict)  # event id -> node that answered
    rewarded: set[str] = field(default_factory=set)  # rewards answered `accepted`
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _send(self, http: httpx.Client, path: str, body: dict) -> httpx.Response | None:
        while not self.stop.is_set():
            try:
                r = http.post(path, json=body)
                if r.status_code == 200:
                    return r
            except httpx.HTTPError:
                pass
            with self.lock:
                self.failures += 1
        return None

    def run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                event_id = uuid.uuid4().hex
                body = example_request(APP, worker * 100_000 + i, event_id=event_id)
                r = self._send(http, f"/v1/apps/{APP}/decisions", body)
                if r is None:
                    return
                with self.lock:
                    self.decided[event_id] = r.headers[NODE]
                reward = {"event_id": event_id, "value": 1.0}
                r = self._send(http, f"/v1/apps/{APP}/rewards", reward)
                if r is not None and r.json()["outcome"] == "accepted":
                    with self.lock:
                        self.rewarded.add(event_id)

    def nodes(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(self.decided.values())

    def count(self) -> int:
        with self.lock:
            return len(self.decided)


@contextlib.contextmanager
def running(load: Load, threads: int = 4) -> Iterator[Load]:
    workers = [threading.Thread(target=load.run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    try:
        yield load
    finally:
        load.stop.set()
        for w in workers:
            w.join()


@pytest.fixture(scope="module")
def cluster(cluster_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    root = tmp_path_factory.mktemp("two-node")
    settings = load_settings(None)
    settings.apps = [a for a in settings.apps if a.name == APP]
    settings.apps[0].reward.wait_seconds = 1.0
    settings.apps[0].reward.aggregation = "max"
    apps = root / "apps.yaml"
    apps.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    with LocalRayCluster() as ray_nodes:
        ray_nodes.add_node("head", 1, head=True)
        ray_nodes.add_node("worker", 1)
        port = free_port()
        args = {
            "config": str(apps),
            "redis_url": cluster_url,
            "open_access": True,
            "spool_dir": str(root / "spool"),
            "learners": {"publish_every_s": 0.2},
        }
        config = ray_nodes.serve_config(
            root / "serve.yaml", port, args, num_replicas=2, max_replicas_per_node=1
        )
        ray_nodes.deploy(config)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout_s=180)
        yield ray_nodes, url, cluster_url


def joined_events(log: EventLog) -> set[str]:
    return {joined_header(f).event_id.decode() for _, f in log.client.xrange(AppKeys(APP).joined)}


def test_both_nodes_serve_and_each_event_is_learned_once_even_after_a_node_dies(
    cluster: tuple[LocalRayCluster, str, str],
) -> None:
    ray_nodes, url, redis_url = cluster
    log = EventLog(connect(redis_url))
    load = Load(url)
    with running(load):
        wait_for(lambda: len(load.nodes()) == 2, 120, "decisions answered by both nodes")
        served_by_both = load.nodes()
        before_kill = load.count()
        ray_nodes.kill_node("worker")
        wait_for(lambda: load.count() >= before_kill + 100, 120, "decisions after the kill")
    assert len(served_by_both) == 2, served_by_both

    decided, rewarded = set(load.decided), load.rewarded
    assert rewarded, "no reward was accepted"
    wait_for(lambda: decided <= set(joined_events(log)), 120, "every accepted decision joined")
    entries = [joined_header(f) for _, f in log.client.xrange(AppKeys(APP).joined)]
    joined = collections.Counter(h.event_id.decode() for h in entries)
    assert joined.most_common(1)[0][1] == 1, "an event was joined twice"
    reward = {h.event_id.decode(): h.reward for h in entries}
    assert all(reward[e] == 1.0 for e in rewarded), "an accepted reward is missing"

    # Learned once: the newest model's lineage consumed each joined event once.
    def learned() -> int:
        model = log.models.latest(APP)
        return 0 if model is None else model.n_learned

    wait_for(lambda: learned() >= len(joined), 120, "every joined event learned")
    assert learned() == len(joined)
