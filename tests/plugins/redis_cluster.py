"""A real 3-master Redis Cluster on loopback (embedded redis-server nodes).

- `cluster_url`: a `redis+cluster://` URL of a cluster started once per test module.
- `redis_cluster(root)`: the same as a context manager, for benchmarks.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from banditrec.eventlog import EmbeddedRedis
from tests.polling import wait_for


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


@contextlib.contextmanager
def redis_cluster(root: Path) -> Iterator[str]:
    """Three masters splitting the 16384 slots; yields the cluster's URL."""
    args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    nodes = [
        EmbeddedRedis(root / f"node{i}", cluster_port(), extra_args=args).start() for i in range(3)
    ]
    try:
        clients = [redis.Redis(port=n.port) for n in nodes]
        slots = [(0, 5460), (5461, 10922), (10923, 16383)]
        for client, (first, last) in zip(clients, slots, strict=True):
            client.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", nodes[0].port)
        wait_for(
            lambda: all(c.cluster("info").get("cluster_state") == "ok" for c in clients),
            30.0,
            "the Redis Cluster to form",
        )
        yield f"redis+cluster://127.0.0.1:{nodes[0].port}"
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url
