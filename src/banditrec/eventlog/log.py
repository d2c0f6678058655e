"""`EventLog`: an app's events along their path, one room per step.

    decisions ──(rewards attach)──▶ join ──▶ joined stream ──▶ learner ──▶ models
      │ outage: spooled while Redis is away, replayed in order when it returns

- `log.decisions` (`decisions.DecisionLog`): served decisions, written before they are
  answered; read back by event id.
- `log.rewards` (`rewards.Rewards`): rewards and activations, attached to their decision
  or kept aside (`orphans`).
- `log.join` (`join.Join`): due decisions moved to the joined stream (`join.Joiner` is the
  loop that keeps doing it).
- `log.joined` (`joined.JoinedStream`): the joined stream read, trimmed and counted.
- `log.configs` (`config_store.ConfigStore`), `log.models` (`registry.ModelRegistry`),
  `log.quarantine` (`quarantine.Quarantine`), `log.outage` (`outage.Outage`, the spool).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .changes import ChangeFeed
from .config_store import ConfigStore
from .decisions import DecisionLog
from .errors import UNAVAILABLE, unavailable_as_error
from .join import Join
from .joined import JoinedStream
from .keys import APPS_KEY, AppKeys, check_app_name
from .outage import Outage
from .quarantine import Quarantine
from .registry import ModelRegistry
from .rewards import Rewards
from .scripts import Scripts
from .settings import EventLogSettings


class EventLog:
    """The rooms of the event log over one Redis client (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        spool_dir: Path | str | None = None,
        *,
        settings: EventLogSettings | None = None,
    ) -> None:
        self.client = client
        self.settings = settings = settings or EventLogSettings()
        self.scripts = scripts = Scripts(client)
        with contextlib.suppress(*UNAVAILABLE):
            scripts.load()
        self.configs = ConfigStore(client, scripts, settings)
        self.models = ModelRegistry(client, scripts, settings.models_kept)
        self.quarantine = Quarantine(client)
        self.outage = Outage(client, scripts, spool_dir, settings)
        self.decisions = DecisionLog(client, scripts, self.outage)
        self.rewards = Rewards(client, scripts, self.outage, settings.orphans_max_len)
        self.join = Join(client, scripts)
        self.joined = JoinedStream(client, self.configs)

    def changes(self) -> ChangeFeed:
        """A new feed of the apps whose model or config changes (see eventlog.changes)."""
        return ChangeFeed(self.client)

    @unavailable_as_error
    def versions(self, app: str) -> tuple[int, int]:
        """(model version, config version) in one round trip: what a replica polls."""
        k = AppKeys(app)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(k.model, "version")
        pipe.get(k.config_version)
        model_version, config_version = pipe.execute()
        return int(model_version or 0), int(config_version or 0)

    @unavailable_as_error
    def drop_app(self, app: str) -> int:
        """Delete every key of the app (decisions, joined stream, models, config)."""
        k = AppKeys(check_app_name(app))
        n = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=k.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                n += self.client.unlink(*batch)  # one hash tag: one slot, legal on a cluster
                batch = []
        if batch:
            n += self.client.unlink(*batch)
        self.client.srem(APPS_KEY, app)
        return n

    def close(self) -> None:
        """Stop the spool flusher (after one last replay attempt) and close the spool."""
        self.outage.close()
