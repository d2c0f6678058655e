"""The audit trail: who changed what, when — config changes, rollbacks, key rotations, erasures.

One Redis stream per app (`br:{app}:audit`, the newest 100,000 entries), each entry an
action, the API key id that did it (`open` when the service runs without keys, `cli` from
the command line), the time and a JSON detail. It never holds a secret or a subject id.
Read it with `GET /v1/apps/{app}/audit` or `banditrec privacy audit`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from ..eventlog.keys import AppKeys, check_app_name

AuditAction = Literal["config_change", "rollback", "key_rotation", "erasure", "retention"]
ACTIONS: tuple[str, ...] = AuditAction.__args__  # type: ignore[attr-defined]
MAX_ENTRIES = 100_000


def _key(app: str) -> str:
    return f"{AppKeys(check_app_name(app)).base}:audit"


def record_action(
    client: Any, app: str, action: AuditAction, actor: str, detail: dict[str, Any]
) -> str:
    """Append one entry; returns its id."""
    fields = {
        "action": action,
        "actor": actor,
        "at": repr(time.time()),
        "detail": orjson.dumps(detail),
    }
    sid = client.xadd(_key(app), fields, maxlen=MAX_ENTRIES, approximate=True)
    return sid.decode() if isinstance(sid, bytes) else str(sid)


def read_actions(
    client: Any, app: str, *, limit: int = 100, action: str | None = None
) -> list[dict[str, Any]]:
    """The newest `limit` entries (newest first), of one kind of action if given."""
    out: list[dict[str, Any]] = []
    last = "+"
    while len(out) < limit:
        entries = client.xrevrange(_key(app), max=last, min="-", count=max(limit, 100))
        for sid, f in entries:
            entry = {
                "id": sid.decode(),
                "action": f[b"action"].decode(),
                "actor": f[b"actor"].decode(),
                "at": float(f[b"at"]),
                "detail": orjson.loads(f[b"detail"]),
            }
            if action is None or entry["action"] == action:
                out.append(entry)
                if len(out) == limit:
                    break
        if len(entries) < max(limit, 100):
            break
        last = "(" + entries[-1][0].decode()
    return out


def actor_of(record: Any) -> str:
    """The API key id of an authorized request (`open` when the service runs without keys)."""
    return "open" if record is None else str(record.id)
