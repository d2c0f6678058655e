"""The local service the service-level benches run: `LocalService` options on a free port,
with open access, 2 CPUs and a data directory (Redis, spool) removed when the bench exits."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from banditrec.eventlog.server import free_port
from banditrec.serving.runner import RunOptions
from banditrec.serving.settings import ServiceSettings


def bench_options(settings: ServiceSettings, prefix: str, replicas: int) -> RunOptions:
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, data_dir, True)
    return RunOptions(
        settings=settings,
        port=free_port(),
        data_dir=data_dir,
        replicas=replicas,
        open_access=True,
        num_cpus=2,
    )
