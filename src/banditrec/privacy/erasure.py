"""Erasure of one data subject's records, everywhere they live, with a receipt.

The subject is named by its raw id (hashed here with every kept key of the app, so records
pseudonymized before a key rotation are found too) or by a pseudonym. A record is the
subject's when its bytes hold one of those pseudonyms (its `_banditrec.subject`, or an
identifier feature). Erased, in this order:

1. decisions waiting for rewards (`pending`: the event's hash and its pending entry) and
   joined ones whose hash is kept a while to answer repeated event ids (`recently_joined`);
2. the joined stream (what the learner, exports and OPE read): the stream entries;
3. spool segments on this machine (decisions written while Redis was unreachable): the
   lines, each segment rewritten in place (`erase_spool`, done first so that whatever is
   replayed meanwhile is caught in pending). Spools on other machines are erased by
   `banditrec privacy erase --spool-dir` there, or replay into Redis to be erased.

Learned models are not rewound: they hold hashed features only (no raw id), and a key
rotation after the erasure leaves the subject's old pseudonym linked to nothing.
The receipt counts what was removed per store; it names key versions, never the subject.
"""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from ..eventlog import EventLog
from ..eventlog.keys import AppKeys, check_app_name
from .keys import PseudonymKeys
from .pseudonymize import PSEUDONYM_PATTERN

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    id: str
    app: str
    key_versions: list[int]
    erased: dict[str, int] = field(default_factory=dict)
    at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def subject_pseudonyms(keys: PseudonymKeys, app: str, subject: str) -> list[str]:
    """The pseudonyms a subject id may carry: under every kept key (or the pseudonym itself)."""
    if PSEUDONYM_PATTERN.match(subject):
        return [subject]
    return [p.pseudonym(subject) for p in keys.all(app)]


def _holds(data: bytes, needles: list[bytes]) -> bool:
    return any(n in data for n in needles)


def _erase_events(client: Any, k: AppKeys, needles: list[bytes]) -> tuple[int, int]:
    """Decision hashes: pending ones, and joined ones kept a while to answer repeats."""
    pending = recent = 0
    prefix = k.event("")
    names = list(client.scan_iter(match=prefix + "*", count=_BATCH))
    for start in range(0, len(names), _BATCH):
        chunk = names[start : start + _BATCH]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.hgetall(name)
        for name, fields in zip(chunk, pipe.execute(), strict=True):
            if fields and _holds(b"".join(fields.values()), needles):
                event_id = name.decode()[len(prefix) :]
                client.delete(name)
                if client.zrem(k.pending, event_id):
                    pending += 1
                else:
                    recent += 1
    return pending, recent


def _erase_joined(client: Any, k: AppKeys, needles: list[bytes]) -> int:
    n, start = 0, "-"
    while True:
        entries = client.xrange(k.joined, min=start, max="+", count=_BATCH)
        doomed = [sid for sid, f in entries if _holds(b"".join(f.values()), needles)]
        if doomed:
            n += int(client.xdel(k.joined, *doomed))
        if len(entries) < _BATCH:
            return n
        start = "(" + entries[-1][0].decode()


def erase_spool(log: EventLog, pseudonyms: list[str]) -> int:
    """Drop the lines holding any of `pseudonyms` from every spool segment on this machine.

    Each segment is rewritten in place (its writer appends with O_APPEND, so what it writes
    next lands after the kept lines), holding this process's spool lock; works with Redis
    unreachable."""
    if log.outage.spool is None:
        return 0
    needles = [p.encode() for p in pseudonyms]
    n = 0
    with getattr(log, "_spool_lock", nullcontext()):
        for segment in sorted(log.outage.spool.root.rglob("*.jsonl")):
            with open(segment, "r+b") as f:
                lines = f.read().splitlines(keepends=True)
                kept = [line for line in lines if not _holds(line, needles)]
                if len(kept) == len(lines):
                    continue
                f.seek(0)
                f.write(b"".join(kept))
                f.truncate()
            n += len(lines) - len(kept)
    return n


def erase_subject(
    log: EventLog, app: str, subject: str, *, keys: PseudonymKeys | None = None
) -> ErasureReceipt:
    """Remove the subject's records from pending, the joined stream and the spool."""
    keys = keys or PseudonymKeys(log.client)
    k = AppKeys(check_app_name(app))
    pseudonyms = subject_pseudonyms(keys, app, subject)
    needles = [p.encode() for p in pseudonyms]
    spool = erase_spool(log, pseudonyms)  # first: what it replays meanwhile lands in pending
    pending, recent = _erase_events(log.client, k, needles)
    erased = {
        "pending": pending,
        "recently_joined": recent,
        "joined": _erase_joined(log.client, k, needles),
        "spool": spool,
    }
    versions = sorted(int(p[2 : p.index(".")]) for p in pseudonyms)
    return ErasureReceipt(uuid.uuid4().hex, app, versions, erased, time.time())
