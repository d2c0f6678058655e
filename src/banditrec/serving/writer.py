"""Decision records to Redis, many requests per round trip, before each request is answered.

Requests hand their records to one writer thread and await the outcome. While the thread
waits on Redis (the GIL released), the event loop decides the next requests; whatever
they queue meanwhile goes out in the next pipeline. So under load one round trip carries
many decisions, and no timer adds latency when the service is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

Records = list[dict[str, Any]]
LogDecisions = Callable[[str, Records], list[dict[str, Any] | None]]

_MAX_RECORDS_PER_ROUND = 2000


class _Item:
    __slots__ = ("app", "future", "loop", "records")

    def __init__(
        self, app: str, records: Records, future: asyncio.Future, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.app = app
        self.records = records
        self.future = future
        self.loop = loop


def _settle(outcomes: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the client went away and the request was cancelled
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class DecisionWriter:
    """`await writer.write(app, records)` → for each record, None if new, else the stored one."""

    def __init__(self, log_decisions: LogDecisions) -> None:
        self._log_decisions = log_decisions
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="banditrec-writer", daemon=True)
        self._thread.start()

    async def write(self, app: str, records: Records) -> list[dict[str, Any] | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queue.put(_Item(app, records, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _take_round(self, first: _Item) -> tuple[list[_Item], bool]:
        items, n, stop = [first], len(first.records), False
        while n < _MAX_RECORDS_PER_ROUND:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            items.append(item)
            n += len(item.records)
        return items, stop

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items, stop = self._take_round(first)
            self._write_round(items)
            if stop:
                return

    def _write_round(self, items: list[_Item]) -> None:
        by_app: dict[str, list[_Item]] = defaultdict(list)
        for item in items:
            by_app[item.app].append(item)
        by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
        for app, app_items in by_app.items():
            records = [r for item in app_items for r in item.records]
            try:
                stored = self._log_decisions(app, records)
                error: BaseException | None = None
            except Exception as exc:  # handed to each waiting request, which answers 503
                stored, error = [], exc
            start = 0
            for item in app_items:
                end = start + len(item.records)
                result = None if error is not None else stored[start:end]
                by_loop[item.loop].append((item.future, result, error))
                start = end
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, outcomes)
