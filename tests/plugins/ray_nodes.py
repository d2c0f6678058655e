"""A Ray cluster of its own on loopback: a head and worker nodes started with `ray start`.

Each node is a `ray start --block` process in a process group of its own, with its own
ports (none of Ray's defaults, so neither the test session's Ray nor another cluster on
the machine is touched) and one temporary directory for the whole cluster. A node is
stopped by killing its process group, nothing else: `ray stop` would stop every Ray on
the machine.

The Serve application is deployed from a Serve config file with `serve run --non-blocking`
(`deploy`), as on a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from banditrec.eventlog.server import free_port
from banditrec.serving.runner import haproxy_env, stop_haproxy

BIN = Path(sys.executable).parent
EXAMPLE_CONFIG = Path(__file__).parents[2] / "src" / "banditrec" / "examples" / "serve_config.yaml"


class LocalRayCluster:
    """`ray start` nodes on 127.0.0.1; `stop()` kills every process they started."""

    def __init__(self) -> None:
        # Short: Ray's and HAProxy's socket paths live under it (~100 characters at most).
        self.root = Path(tempfile.mkdtemp(prefix="brc-", dir="/tmp"))
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self.gcs_port = free_port()
        self.env = {
            **os.environ,
            **haproxy_env(self.root),
            "RAY_worker_niceness": "0",
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
            "RAY_USAGE_STATS_ENABLED": "0",
            # A node gone is declared dead after ~3 s (default ~15 s), so Serve replaces
            # what ran on it within a test's time.
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
            # `ray start --head` turns token authentication on: every process of this
            # cluster (nodes, `serve run`, drivers) gets this token, none from ~/.ray.
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
        }
        for name in ("RAY_ADDRESS", "REDIS_URL"):
            self.env.pop(name, None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def _ports(self) -> list[str]:
        ports: set[int] = set()
        while len(ports) < 41:  # distinct free ports: 40 for workers, one for the metrics
            ports.add(free_port())
        workers = sorted(ports)
        return [
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={workers.pop()}",
            "--worker-port-list=" + ",".join(map(str, workers)),
        ]

    def start_node(self, name: str, num_cpus: int, *, head: bool = False) -> None:
        args = [str(BIN / "ray"), "start", "--block", "--node-ip-address=127.0.0.1"]
        args.append(f"--num-cpus={num_cpus}")
        args += ["--disable-usage-stats", "--include-log-monitor=false"]
        if head:
            args += [
                "--head",
                f"--port={self.gcs_port}",
                f"--ray-client-server-port={free_port()}",
                "--include-dashboard=false",
                f"--temp-dir={self.root}",
            ]
        else:
            args.append(f"--address={self.address}")
        out = open(self.root / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        self.nodes[name] = subprocess.Popen(
            [*args, *self._ports()],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its processes in a group of their own
        )

    def add_node(self, name: str, num_cpus: int, *, head: bool = False) -> None:
        """Start a node and wait until its `ray start` says it runs (a worker has then
        registered with the head). Ray gives a node 30 s to register; on a machine too
        busy for that (or after 90 s without word) the start is tried again, three times
        in all."""
        for attempt in range(3):
            self.start_node(name, num_cpus, head=head)
            deadline = time.monotonic() + 90
            while "Ray runtime started" not in self.log(name):
                if self.nodes[name].poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            else:
                return
            self.kill_node(name)
            if attempt == 2:
                raise RuntimeError(f"ray node {name} did not start: {self.log(name)[-2000:]}")

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def kill_node(self, name: str) -> None:
        """SIGKILL every process of the node (its raylet, workers and replicas)."""
        proc = self.nodes.pop(name)
        # Ray's workers (replicas) run in process groups of their own under the raylet.
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def serve_config(self, path: Path, port: int, args: dict[str, Any], **ingress: Any) -> Path:
        """The example Serve config, changed for this cluster: HTTP on `port` (HAProxy on
        the head only: every node of this cluster is the same machine), the app's `args`,
        and `ingress` options of the Ingress deployment."""
        config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
        config["proxy_location"] = "HeadOnly"
        config["http_options"] = {"host": "127.0.0.1", "port": port}
        (app,) = config["applications"]
        app["args"] = args
        for deployment in app["deployments"]:
            deployment["ray_actor_options"]["num_cpus"] = 0.5
            if deployment["name"] == "Ingress":
                deployment.pop("autoscaling_config", None)
                deployment.update(ingress)
        path.write_text(yaml.safe_dump(config))
        return path

    def deploy(self, config: Path, timeout_s: float = 120.0) -> None:
        """`serve run --non-blocking` the config file on this cluster."""
        subprocess.run(
            [str(BIN / "serve"), "run", "--non-blocking", "--address", self.address, str(config)],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )

    def stop(self) -> None:
        for name in list(self.nodes):
            self.kill_node(name)
        stop_haproxy(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
