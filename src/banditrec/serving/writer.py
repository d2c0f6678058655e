"""Decision records to Redis, many requests per round trip, before each request is answered.

The one batching layer of the decision log. Requests hand their records to one writer
thread and await the outcome. While the thread waits on Redis (the GIL released), the event
loop decides the next requests; whatever they queue meanwhile goes out in the next pipeline
(`DecisionLog.write_jobs`), each request's records as its own job, so a bad record fails
only its own request. Under load one round trip carries many decisions, and no timer adds
latency when the service is idle.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections import defaultdict
from typing import Any

from ..eventlog.decisions import DecisionJob, DecisionLog, Records, Stored

_MAX_RECORDS_PER_ROUND = 2000

# A waiting caller: an asyncio future and its loop, or a thread's future (loop None).
_Waiter = tuple[str, Records, "asyncio.Future[Stored] | concurrent.futures.Future[Stored]", Any]


def _settle(outcomes: list[tuple[asyncio.Future, DecisionJob]]) -> None:
    for future, job in outcomes:
        if future.done():  # the client went away and the request was cancelled
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)


class DecisionWriter:
    """`await writer.write(app, records)` → for each record, None if new, else the stored one."""

    def __init__(self, decisions: DecisionLog) -> None:
        self._decisions = decisions
        self._queue: queue.SimpleQueue[_Waiter | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="banditrec-writer", daemon=True)
        self._thread.start()

    async def write(self, app: str, records: Records) -> Stored:
        """What `DecisionLog.write(app, records)` returns, or raises."""
        if not records:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._queue.put((app, records, future, loop))
        return await future

    def submit(self, app: str, records: Records) -> concurrent.futures.Future[Stored]:
        """The same for a thread: a future of the outcome."""
        future: concurrent.futures.Future[Stored] = concurrent.futures.Future()
        if not records:
            future.set_result([])
            return future
        self._queue.put((app, records, future, None))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _take_round(self, first: _Waiter) -> tuple[list[_Waiter], bool]:
        items, n, stop = [first], len(first[1]), False
        while n < _MAX_RECORDS_PER_ROUND:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            items.append(item)
            n += len(item[1])
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

    def _write_round(self, items: list[_Waiter]) -> None:
        # Grouped by app, so each app's events go out in as few script calls as they can.
        by_app: dict[str, list[_Waiter]] = defaultdict(list)
        for item in items:
            by_app[item[0]].append(item)
        waiting = []
        for app, app_items in by_app.items():
            for _, records, future, loop in app_items:
                try:
                    job = DecisionJob.of(app, records)
                except ValueError as exc:  # not decisions of this app: this caller's error
                    job = DecisionJob(app, records, [], error=exc)
                waiting.append((job, future, loop))
        jobs = [job for job, _, _ in waiting if job.error is None]
        if jobs:
            self._decisions.write_jobs(jobs)
        by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
        for job, future, loop in waiting:
            if loop is not None:
                by_loop[loop].append((future, job))
            elif job.error is not None:
                future.set_exception(job.error)
            else:
                future.set_result(job.result)
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, outcomes)
