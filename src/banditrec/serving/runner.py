"""Start the whole service from one process: Redis (embedded unless a URL is given), Ray
(local, or an existing cluster), Serve on the fast HAProxy ingress, and the application.

What `banditrec serve` and the benchmark run. Everything it starts is stopped by `stop()`
(bounded in time, so a Ray already gone cannot hang it), by a failed `start()`, and, if
this process is killed before it can clean up, by its guardian process (serving/guardian.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..eventlog import EmbeddedRedis
from ..eventlog.server import free_port
from .deployment import APP_NAME, HAPROXY_ENV, deploy
from .guardian import clean_up, haproxy_pids, record_pid
from .settings import ServiceSettings

log = logging.getLogger("banditrec.serving")


@dataclass
class RunOptions:
    settings: ServiceSettings
    host: str = "127.0.0.1"
    port: int = 8000
    address: str | None = None  # an existing Ray cluster; None starts Ray here
    redis_url: str | None = None  # None: $REDIS_URL, else the embedded server
    data_dir: Path = Path(".banditrec")
    replicas: int = 1
    open_access: bool = False
    keep_live_configs: bool = False
    fast_ingress: bool = True  # False: Serve's default Python proxy (for comparison only)
    num_cpus: int | None = None
    max_replicas_per_node: int | None = None  # on a cluster: spread the ingress replicas
    learner_options: dict[str, Any] = field(default_factory=dict)
    ready_timeout_s: float = 120.0


def haproxy_env(root: Path) -> dict[str, str]:
    """Serve's HAProxy settings with its files under `root` (a short path: HAProxy refuses
    socket paths over ~97 characters) and free ports for its stats and metrics, so two
    Serve instances on one machine (a service and a benchmark) do not collide."""
    return {
        **HAPROXY_ENV,
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(root / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(root / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(root / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(root),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(root / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        # Serve starts HAProxy with 4 threads; on a small machine they take CPU from the
        # replicas (2 cores: ~+5% decisions/s and a lower p99 with 1 thread). An explicit
        # setting in the environment wins.
        "RAY_SERVE_HAPROXY_NBTHREAD": os.environ.get(
            "RAY_SERVE_HAPROXY_NBTHREAD", str(max(1, min(4, (os.cpu_count() or 2) // 2)))
        ),
    }


def stop_haproxy(root: Path) -> int:
    """Stop the HAProxy processes whose config lives under `root`.

    `ray.shutdown()` kills Serve's HAProxy manager without letting it stop its HAProxy
    child, which would keep the port; these are the processes this service started."""
    pids = haproxy_pids(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
    return len(pids)


def _bounded(what: str, fn: Any, timeout_s: float) -> None:
    """Run `fn`, giving up after `timeout_s` (a Ray whose processes are already stopping
    can leave a call waiting forever)."""
    thread = threading.Thread(target=fn, name=what, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        log.warning("%s did not finish within %.0f s; going on", what, timeout_s)


def wait_ready(url: str, timeout_s: float = 120.0) -> None:
    """Until `/readyz` answers 200 at `url` (through the ingress)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url + "/readyz", timeout=2.0)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise TimeoutError(f"the service did not become ready at {url}: {last}")


class LocalService:
    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.redis: EmbeddedRedis | None = None
        self.redis_url: str | None = None
        self._started_ray = False
        self._haproxy_dir: Path | None = None
        self._guardian: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        host = self.options.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self.options.port}"

    def start(self) -> LocalService:
        """Start everything; on any failure, stop what was started and raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalService:
        o = self.options
        self.redis_url = o.redis_url or os.environ.get("REDIS_URL")
        if self.redis_url is None and o.address is not None:
            raise ValueError(
                "joining a Ray cluster needs a Redis every node can reach: "
                "pass --redis-url or set REDIS_URL"
            )
        import ray

        if o.fast_ingress and not ray.is_initialized() and o.address is None:
            # HAProxy's files (its socket paths must stay short) and the guardian's pid list.
            self._haproxy_dir = Path(tempfile.mkdtemp(prefix="brh-", dir="/tmp"))
            self._guardian = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "banditrec.serving.guardian",
                    str(os.getpid()),
                    str(self._haproxy_dir),
                ],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of a signal to this process group
            )
        if self.redis_url is None:
            self.redis = EmbeddedRedis(o.data_dir / "redis").start()
            self.redis_url = self.redis.url
            if self._haproxy_dir is not None and self.redis.pid is not None:
                record_pid(self._haproxy_dir, self.redis.pid)
        self._start_ray()
        deploy(
            self.redis_url,
            o.settings,
            open_access=o.open_access,
            spool_dir=str((o.data_dir / "spool").resolve()),
            learner_options=o.learner_options,
            ingress_options=self._ingress_options(),
            keep_live_configs=o.keep_live_configs,
        )
        self.wait_ready()
        return self

    def _ingress_options(self) -> dict[str, Any]:
        o = self.options
        options: dict[str, Any] = {"num_replicas": o.replicas}
        if o.max_replicas_per_node is not None:
            options["max_replicas_per_node"] = o.max_replicas_per_node
        return options

    def _start_ray(self) -> None:
        import ray
        from ray import serve

        o = self.options
        starting = not ray.is_initialized() and o.address is None
        if self._haproxy_dir is not None:
            # Read by the Serve controller and workers when they start: set before ray.init.
            os.environ.update(haproxy_env(self._haproxy_dir))
        elif not o.fast_ingress:
            os.environ.pop("RAY_SERVE_ENABLE_HA_PROXY", None)
        if starting:
            # Ray starts workers at nice 15; the replicas are the service here.
            os.environ.setdefault("RAY_worker_niceness", "0")
            # A replica behind HAProxy stays up 30 s after it is told to stop, so that load
            # balancers of a cluster deregister it; here HAProxy is the only one to tell.
            os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "2")
        if not ray.is_initialized():
            ray.init(
                address=o.address,
                num_cpus=o.num_cpus if o.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
            )
            self._started_ray = o.address is None
        serve.start(http_options={"host": o.host, "port": o.port})

    def wait_ready(self) -> None:
        wait_ready(self.url, self.options.ready_timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the application (replicas flush their spools, learners publish), the Ray
        this started, HAProxy, the embedded Redis; each step bounded by `timeout_s`."""
        import ray
        from ray import serve

        def delete_app() -> None:
            try:
                serve.delete(APP_NAME)
            except Exception as exc:  # shutting down anyway
                log.warning("could not delete the Serve application: %s", exc)

        if self.redis is not None and not self.redis.running:  # stopped with us: reap it now
            self.redis.stop()
        if ray.is_initialized():
            _bounded("deleting the Serve application", delete_app, timeout_s)
        if self._started_ray:
            _bounded("stopping Ray", ray.shutdown, timeout_s)
        if self.redis is not None:
            self.redis.stop()  # after the replicas flushed their spools into it
        if self._haproxy_dir is not None:
            clean_up(self._haproxy_dir)  # HAProxy (and anything recorded still alive)
        if self._guardian is not None:
            self._guardian.terminate()
            self._guardian.wait()

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
