"""The Redis a bench script runs against: the one at --redis-url, or its own embedded one.

Not `eventlog.connect_or_start`: that also honours $REDIS_URL, and a bench should measure
the server it says it measures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from banditrec.eventlog import EmbeddedRedis


@contextmanager
def bench_redis(url: str | None = None) -> Iterator[tuple[str, Path]]:
    """(Redis URL, a scratch directory): an embedded redis-server in that directory, stopped
    on exit, unless `url` is given."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if url is not None:
            yield url, scratch
            return
        server = EmbeddedRedis(scratch / "redis").start()
        try:
            yield server.url, scratch
        finally:
            server.stop()
