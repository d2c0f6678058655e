"""Retention per app: `privacy.retention` in apps.yaml or a PATCH, applied to the event log.

The joined stream keeps at most `max_events` events and none older than `max_age_days`
(never trimming past what the learner has learned); unset fields keep the event log's
defaults (1,000,000 events, 7 days).
"""

from __future__ import annotations

from ..config import AppConfig
from ..eventlog import EventLog

DAY_S = 86_400.0


def apply_retention(log: EventLog, config: AppConfig) -> tuple[int, float]:
    """Store the config's retention as the app's trimming rules; returns (events, seconds) in force."""
    r = config.privacy.retention
    max_age_s = None if r.max_age_days is None else r.max_age_days * DAY_S
    log.configs.set_retention(config.name, max_len=r.max_events, max_age_s=max_age_s)
    return log.configs.retention(config.name)
