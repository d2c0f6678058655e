"""Change notices: whoever changes an app's model or config says so on one Redis pub/sub
channel, so replicas wait on Redis for the next change instead of polling for it.

A notice is a hint, not the record: the model and config stay in their keys, and a reader
that may have missed notices (it just (re)subscribed, or Redis went away) polls every app
once. On a Redis Cluster a PUBLISH reaches the subscribers of every node.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from .errors import UNAVAILABLE
from .keys import PREFIX

log = logging.getLogger(__name__)

CHANNEL = f"{PREFIX}:changes"


def announce(client: Any, app: str) -> None:
    """Tell the subscribers that `app`'s model or config changed (best effort: a notice lost
    is caught up by the readers' periodic poll)."""
    with contextlib.suppress(*UNAVAILABLE):
        client.publish(CHANNEL, app)


class ChangeFeed:
    """The apps announced since the last call, waited for on a subscribed connection."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._pubsub: Any = None

    @property
    def connected(self) -> bool:
        return self._pubsub is not None

    def wait(self, timeout_s: float) -> set[str] | None:
        """Block until a notice comes or `timeout_s` passes; the apps announced (empty on a
        timeout), or None when notices may have been missed (just subscribed, or Redis is
        unreachable): then every app should be looked at."""
        try:
            if self._pubsub is None:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self._pubsub = pubsub
                return None
            apps: set[str] = set()
            deadline = time.monotonic() + timeout_s
            while True:
                remaining = 0.0 if apps else deadline - time.monotonic()
                message = self._pubsub.get_message(timeout=max(0.0, remaining))
                if message is not None and message.get("type") == "message":
                    apps.add(message["data"].decode())
                elif apps or remaining <= 0:
                    return apps
        except UNAVAILABLE as exc:
            log.debug("change notices unavailable: %s", exc)
            self.close()
            return None

    def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                self._pubsub.close()
        self._pubsub = None
