"""The Ray Serve application: `Ingress` (the HTTP API, every app's engine in the replica)
and `LearnerPool` (joins and learning), deployed together.

`banditrec serve` calls `deploy`; on an existing cluster, a Serve config file names
`banditrec.serving.deployment:build_app` as its import path (see examples/serve_config.yaml).
Either way the fast ingress path needs `RAY_SERVE_ENABLE_HA_PROXY=1` in the environment of
the Ray cluster (set before `ray start` / `ray.init`): Serve then puts HAProxy in front of
the ingress replicas, which answer HTTP themselves, instead of its Python proxy.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import ray
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from ..eventlog import EventLog, connect
from ..policies.check import config_problems
from ..privacy.retention import apply_retention
from ..reporting import ReportingPool
from .app import create_api
from .learners import LearnerPool
from .service import DecisionService
from .settings import LearnerOptions, ServiceSettings, load_settings

APP_NAME = "banditrec"
HAPROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1"}
# Serve runs user code on a second event loop in its own thread by default. The handlers
# here never block the loop (Redis calls run in threads), so they run on the replica's
# own loop: two thread hand-offs fewer per request (~25% more decisions/s on 2 cores).
INGRESS_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}
# A log line per decision cost ~15% of a replica, so the access log is off. Serve still
# formats its per-request INFO record (caller lookup included) before a filter drops it;
# at WARNING it is skipped at the first check.
INGRESS_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}
# Serve learns that a replica died from its next health check (every 10 s by default): a
# killed learner or replica was replaced ~10 s late. Every 2 s costs each replica a call
# it answers at once.
HEALTH_CHECK = {"health_check_period_s": 2.0, "health_check_timeout_s": 10.0}
NODE_HEADER = b"x-banditrec-node"


class NodeHeader:
    """ASGI middleware: every answer names the Ray node of the replica that gave it
    (`X-Banditrec-Node`), so a client or a test sees which nodes serve."""

    def __init__(self, app: Any, node_id: str) -> None:
        self.app = app
        self.header = (NODE_HEADER, node_id.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_node(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, send_with_node)


@serve.deployment(
    name="LearnerPool",
    num_replicas=1,
    max_ongoing_requests=8,
    ray_actor_options={"num_cpus": 0.5},
    **HEALTH_CHECK,
)
class LearnerDeployment:
    def __init__(self, redis_url: str, options: dict[str, Any] | None = None) -> None:
        self.log = EventLog(connect(redis_url))
        self.pool = LearnerPool(self.log, LearnerOptions.model_validate(options or {}))
        self.reports = ReportingPool(self.log)  # the online report's buckets, beside the joins

    def status(self) -> dict[str, dict[str, object]]:
        return self.pool.status()

    def __del__(self) -> None:
        self.pool.close()  # each learner publishes what it learned since its last publish
        self.reports.close()
        self.log.close()


@serve.deployment(
    name="Ingress",
    max_ongoing_requests=256,
    ray_actor_options={"num_cpus": 0.5, "runtime_env": {"env_vars": INGRESS_ENV}},
    logging_config=INGRESS_LOGGING,
    **HEALTH_CHECK,
)
@serve.ingress()
class IngressDeployment:
    def __init__(
        self,
        redis_url: str,
        settings: dict[str, Any],
        open_access: bool = False,
        spool_dir: str | None = None,
        learners: DeploymentHandle | None = None,
    ) -> None:
        self.log = EventLog(connect(redis_url), spool_dir=spool_dir)
        self.service = DecisionService(
            self.log, ServiceSettings.model_validate(settings), open_access=open_access
        )
        self.learners = learners  # bound here so the application deploys the learners with it
        # Everything loaded so far (Ray, FastAPI, VW, the apps) lives as long as the replica:
        # frozen, the collector stops walking it again and again as requests allocate. In a
        # tight loop of batch requests that was ~12% of the CPU (within the noise through
        # HTTP on 2 cores); raising the thresholds as well made it slower.
        gc.collect()
        gc.freeze()

    def __serve_build_asgi_app__(self) -> FastAPI:
        api = create_api(self.service)
        api.add_middleware(NodeHeader, node_id=ray.get_runtime_context().get_node_id())
        return api

    def __del__(self) -> None:
        self.service.close()
        self.log.close()  # replays what the spool still holds, if Redis answers


class BuildArgs(BaseModel):
    """`args:` of the application in a Serve config file."""

    model_config = ConfigDict(extra="forbid")

    config: Path | None = Field(None, description="apps.yaml; the shipped example when omitted.")
    redis_url: str | None = Field(None, description="Redis URL; $REDIS_URL when omitted.")
    open_access: bool = Field(False, description="Serve without API keys (development only).")
    spool_dir: str | None = Field(None, description="Where decisions wait while Redis is down.")
    keep_live_configs: bool = Field(
        False, description="Keep configs already in Redis (changed live) instead of the file's."
    )
    learners: dict[str, Any] = Field(
        default_factory=dict, description="LearnerOptions fields, over those of the config file."
    )


def seed_apps(log: EventLog, settings: ServiceSettings, *, keep_live: bool = False) -> list[str]:
    """Store the file's app configs in Redis (where every replica reads them); returns the
    names written. Unchanged configs are not rewritten, so replicas do not reload them."""
    written = []
    for config in settings.apps:
        current = log.configs.get(config.name)
        if current == config or (keep_live and current is not None):
            continue
        problems = config_problems(config)  # nothing stored that no replica could build
        if problems:
            detail = "; ".join(f"{loc}: {msg}" for loc, msg in problems)
            raise ValueError(f"app {config.name!r}: {detail}")
        log.configs.put(config)
        apply_retention(log, config)
        written.append(config.name)
    return written


def application(
    redis_url: str,
    settings: ServiceSettings,
    *,
    open_access: bool = False,
    spool_dir: str | None = None,
    learner_options: dict[str, Any] | None = None,
    ingress_options: dict[str, Any] | None = None,
) -> Application:
    options = {**settings.learners.model_dump(), **(learner_options or {})}
    learners = LearnerDeployment.bind(
        redis_url, LearnerOptions.model_validate(options).model_dump()
    )
    ingress = IngressDeployment.options(**(ingress_options or {}))
    return ingress.bind(
        redis_url, settings.model_dump(mode="json"), open_access, spool_dir, learners
    )


def build_app(args: dict[str, Any]) -> Application:
    """The application builder named in Serve config files."""
    a = BuildArgs.model_validate(args)
    redis_url = a.redis_url or os.environ.get("REDIS_URL")
    if not redis_url:
        raise ValueError(
            "set args.redis_url or REDIS_URL: the replicas of a cluster share one Redis"
        )
    settings = load_settings(a.config)
    seed_apps(EventLog(connect(redis_url)), settings, keep_live=a.keep_live_configs)
    return application(
        redis_url,
        settings,
        open_access=a.open_access,
        spool_dir=a.spool_dir,
        learner_options=a.learners,
    )


def deploy(
    redis_url: str,
    settings: ServiceSettings,
    *,
    name: str = APP_NAME,
    route_prefix: str = "/",
    open_access: bool = False,
    spool_dir: str | None = None,
    learner_options: dict[str, Any] | None = None,
    ingress_options: dict[str, Any] | None = None,
    keep_live_configs: bool = False,
) -> None:
    """Seed the configs and run the application on the Serve instance of the connected Ray."""
    seed_apps(EventLog(connect(redis_url)), settings, keep_live=keep_live_configs)
    app = application(
        redis_url,
        settings,
        open_access=open_access,
        spool_dir=spool_dir,
        learner_options=learner_options,
        ingress_options=ingress_options,
    )
    serve.run(app, name=name, route_prefix=route_prefix)
