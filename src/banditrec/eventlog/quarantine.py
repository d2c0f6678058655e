"""Joined events the learner could not learn: kept aside, counted, listed, exportable.

An entry of the joined stream that fails to learn (a record VW cannot take, one no policy
can read) is copied whole into the app's quarantine stream (`br:{app}:quarantine`, under
the app's hash tag) with why and when, counted in the app's stats (`quarantined`), and the
learner moves on: one poison event never stops an app's learning.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from .keys import AppKeys, check_app_name


class Quarantine:
    def __init__(self, client: Any, max_len: int = 100_000) -> None:
        self.client = client
        self.max_len = max_len

    def add(self, app: str, stream_id: str, fields: dict[bytes, bytes], reason: str) -> None:
        """Keep one joined entry (`h` and `rec` as they were) with why it was not learned."""
        k = AppKeys(check_app_name(app))
        entry = {
            b"joined_id": stream_id.encode(),
            b"h": fields.get(b"h", b""),
            b"rec": fields.get(b"rec", b""),
            b"why": reason.encode()[:2000],
            b"t": repr(time.time()).encode(),
        }
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(k.quarantine, entry, maxlen=self.max_len, approximate=True)
        pipe.hincrby(k.stats, "quarantined", 1)
        pipe.execute()

    def list(self, app: str, count: int = 100, before: str = "+") -> list[dict[str, Any]]:
        """The newest quarantined entries first (before stream id `before`, "(id" to exclude
        it): id, joined id, event id, slot, why, when, and the record as logged (JSON text)."""
        k = AppKeys(check_app_name(app))
        out = []
        for sid, f in self.client.xrevrange(k.quarantine, max=before, count=count):
            head = f.get(b"h", b"").decode(errors="replace")
            event_id, _, rest = head.partition("|")
            out.append(
                {
                    "id": sid.decode(),
                    "joined_id": f.get(b"joined_id", b"").decode(),
                    "event_id": event_id,
                    "slot": rest.rsplit("|", 4)[0] if rest else "",
                    "why": f.get(b"why", b"").decode(errors="replace"),
                    "quarantined_at": float(f.get(b"t", b"0")),
                    "record": f.get(b"rec", b"").decode(errors="replace"),
                }
            )
        return out

    def export(self, app: str, path: Path | str, batch: int = 1000) -> int:
        """Every quarantined entry, oldest first, as JSON lines (what `list` gives); how many."""
        n, before = 0, "+"
        entries: list[dict[str, Any]] = []
        while True:
            page = self.list(app, batch, before)
            entries += page
            if len(page) < batch:
                break
            before = "(" + page[-1]["id"]
        with Path(path).open("wb") as f:
            for entry in reversed(entries):
                f.write(orjson.dumps(entry) + b"\n")
                n += 1
        return n

    def count(self, app: str) -> int:
        return int(self.client.xlen(AppKeys(check_app_name(app)).quarantine))
