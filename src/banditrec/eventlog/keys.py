"""Key names. Every key of an app carries the hash tag `{app}`, so on a Redis Cluster an
app's keys share one slot and a Lua script may touch any of them atomically."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import APP_NAME_PATTERN

PREFIX = "br"
APPS_KEY = f"{PREFIX}:apps"  # set of app names (not app-tagged: read on its own)
UNKNOWN_APP_STATS_KEY = f"{PREFIX}:unknown_apps"  # hash: app name -> rewards received
UNKNOWN_APP_ORPHANS_KEY = f"{PREFIX}:unknown_apps:orphans"  # stream of those rewards


@dataclass(frozen=True, slots=True)
class AppKeys:
    app: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{{self.app}}}"

    def event(self, event_id: str) -> str:
        """Hash: a decision's records (one per slot), its rewards so far, join state."""
        return f"{self.base}:ev:{event_id}"

    def early(self, event_id: str) -> str:
        """List: rewards that arrived before their decision, held for the grace period."""
        return f"{self.base}:early:{event_id}"

    def model_version_key(self, version: int) -> str:
        """Hash: one stored model version (bytes per slot, offset, counts)."""
        return f"{self.base}:mv:{version}"

    @property
    def pending(self) -> str:
        """Sorted set: event id -> join deadline (unix seconds)."""
        return f"{self.base}:pending"

    @property
    def early_due(self) -> str:
        """Sorted set: event id -> when its early rewards become orphans."""
        return f"{self.base}:early_due"

    @property
    def joined(self) -> str:
        """Stream: joined records, the learner's input."""
        return f"{self.base}:joined"

    @property
    def orphans(self) -> str:
        """Stream: rewards kept aside (unknown event or slot, duplicate, after the join)."""
        return f"{self.base}:orphans"

    @property
    def quarantine(self) -> str:
        """Stream: joined entries the learner could not learn, with why (see quarantine.py)."""
        return f"{self.base}:quarantine"

    @property
    def config(self) -> str:
        """String: the app's AppConfig as JSON."""
        return f"{self.base}:config"

    @property
    def config_version(self) -> str:
        return f"{self.base}:config_version"

    @property
    def rules(self) -> str:
        """Hash: what the Lua scripts need from the config (wait, default reward, aggregation...)."""
        return f"{self.base}:rules"

    @property
    def stats(self) -> str:
        return f"{self.base}:stats"

    @property
    def model(self) -> str:
        """Hash: the current model's version, learned-through offset and counts."""
        return f"{self.base}:model"

    @property
    def models(self) -> str:
        """Sorted set: kept model versions -> creation time."""
        return f"{self.base}:models"

    @property
    def learner_lease(self) -> str:
        """String: token of the learner that currently holds the app (one writer per app)."""
        return f"{self.base}:learner"

    @property
    def pattern(self) -> str:
        return f"{self.base}:*"


def check_app_name(app: str) -> str:
    if not isinstance(app, str) or not re.fullmatch(APP_NAME_PATTERN, app):
        raise ValueError(f"app name {app!r} must match {APP_NAME_PATTERN}")
    return app
