"""Ray fixtures: one Ray instance per test session, and one banditrec deployment on it.

- `ray_serve`: Ray (2 CPUs, no dashboard) and Serve started once, on the HAProxy ingress
  (the environment is set before `ray.init`, so the controller and workers inherit it).
  HAProxy's files and ports are the session's own, so another Serve on the machine
  (a benchmark, another checkout) does not collide with it.
- `banditrec_service`: the example apps (short reward waits) deployed once, with API keys of
  every kind, against a Redis server of its own: its learners join and learn every app in
  their Redis, which must not be the one other tests create apps in.
- `admin_http`: an HTTP client of that service with the admin key; `service_event_log`: its
  event log (its Redis), for what a test checks behind the API.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from banditrec.eventlog import EventLog


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServeInstance:
    url: str
    port: int


@pytest.fixture(scope="session")
def ray_serve() -> Iterator[ServeInstance]:
    from banditrec.serving.runner import haproxy_env, stop_haproxy

    # HAProxy's socket paths must stay under ~97 characters: a short directory of our own.
    files = Path(tempfile.mkdtemp(prefix="brh-", dir="/tmp"))
    os.environ.update(haproxy_env(files))
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield ServeInstance(url=f"http://127.0.0.1:{port}", port=port)
    ray.shutdown()
    stop_haproxy(files)
    shutil.rmtree(files, ignore_errors=True)


# --- the banditrec deployment -----------------------------------------------------------

TEST_WAIT_S = 1.0


@dataclass
class ServiceUnderTest:
    url: str
    redis_url: str
    keys: dict[str, str] = field(default_factory=dict)  # role -> key
    keys_file: Path | None = None

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def service_settings(keys_file: Path):
    """The example apps with short reward waits, plus API keys of every kind."""
    from banditrec.serving.auth import create_key
    from banditrec.serving.settings import load_settings

    settings = load_settings(None)
    for app in settings.apps:
        app.reward.wait_seconds = TEST_WAIT_S
    keys: dict[str, str] = {}
    for role, apps, scopes in [
        ("admin", ["*"], ["admin"]),
        ("decide", ["content"], ["decide"]),
        ("reward", ["content"], ["reward"]),
        ("everything_channel", ["channel"], ["decide", "reward"]),
    ]:
        key, record = create_key(apps, scopes, note=role)  # type: ignore[arg-type]
        settings.api_keys.append(record)
        keys[role] = key
    settings.keys_file = keys_file
    return settings, keys


@pytest.fixture(scope="session")
def banditrec_service(
    ray_serve: ServeInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceUnderTest]:
    from banditrec.eventlog import EmbeddedRedis
    from banditrec.serving.deployment import deploy
    from banditrec.serving.runner import wait_ready

    root = tmp_path_factory.mktemp("banditrec-service")
    redis = EmbeddedRedis(root / "redis").start()
    settings, keys = service_settings(root / "keys.yaml")
    deploy(
        redis.url,
        settings,
        spool_dir=str(root / "spool"),
        learner_options={"publish_every_s": 0.2, "join_interval_s": 0.05},
    )
    service = ServiceUnderTest(ray_serve.url, redis.url, keys, settings.keys_file)
    wait_ready(ray_serve.url, timeout_s=90)
    yield service
    redis.stop()


@pytest.fixture(scope="module")
def admin_http(banditrec_service: ServiceUnderTest) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=banditrec_service.url, headers=banditrec_service.headers("admin"), timeout=10
    ) as client:
        yield client


@pytest.fixture(scope="module")
def service_event_log(banditrec_service: ServiceUnderTest) -> EventLog:
    from banditrec.eventlog import EventLog, connect

    return EventLog(connect(banditrec_service.redis_url))


# --- requests for the example apps ------------------------------------------------------

_TOPICS = ["tech", "sports", "politics", "culture", "science"]
_CHANNELS = {"email": 0.001, "push": 0.0, "sms": 0.02, "in_app": 0.0}
_HOURS = [7, 9, 12, 15, 18, 20, 22]


def _content(i: int, n_actions: int = 10) -> tuple[dict, list[dict]]:
    user = {t: round(((i * 7 + j * 3) % 10) / 10, 1) for j, t in enumerate(_TOPICS)}
    user["mobile"] = i % 2 == 0
    actions = [
        {
            "id": f"item-{(i + k) % 50}",
            "features": {
                "topic": {_TOPICS[(i + k) % len(_TOPICS)]: 1.0},
                "item": {"quality": round(((i + k) % 7) / 7, 3), "long": k % 3 == 0},
            },
        }
        for k in range(n_actions)
    ]
    return {"user": user}, actions


def _channel(i: int) -> tuple[dict, list[dict]]:
    context = {
        "user": {
            "age": ["18-24", "25-34", "35-54", "55+"][i % 4],
            "platform": "ios" if i % 2 else "web",
        },
        "fatigue": {c: round((i % 5) / 5, 1) for c in _CHANNELS},
    }
    actions = [{"id": c, "features": {"channel": {"cost": cost}}} for c, cost in _CHANNELS.items()]
    return context, actions


def _send_time(i: int) -> tuple[dict, list[dict]]:
    context = {
        "user": {"morning": round((i % 3) / 3, 2), "evening": round(((i + 1) % 3) / 3, 2)},
        "day": {
            "weekday": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][i % 7],
            "weekend": i % 7 >= 5,
        },
    }
    actions = [{"id": f"h{h:02d}", "features": {"hour": {"h": h / 24}}} for h in _HOURS]
    return context, actions


EXAMPLE_APPS = ("content", "channel", "send_time")


def example_request(app: str, i: int = 0, **extra: object) -> dict:
    """A decision request body for one of the example apps (`journey`: all three slots)."""
    if app == "journey":
        context, content = _content(i, 5)
        _, channels = _channel(i)
        _, hours = _send_time(i)
        slots = [
            {"id": "content", "actions": content},
            {"id": "channel", "actions": channels},
            {"id": "send_time", "actions": hours},
        ]
        return {"context": context, "slots": slots, **extra}
    make = {"content": _content, "channel": _channel, "send_time": _send_time}[app]
    context, actions = make(i)
    return {"context": context, "actions": actions, **extra}
