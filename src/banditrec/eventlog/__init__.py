"""Redis: decision log, rewards, join, joined stream, model registry, embedded server.

Layout and every reward outcome: docs/eventlog.md.
"""

from .connection import connect, connect_or_start, is_cluster
from .errors import ConfigChangedError, EventLogUnavailable, ModelConflictError, UnknownAppError
from .keys import AppKeys
from .log import EventLog, RewardOutcome
from .registry import ModelRecord
from .server import EmbeddedRedis
from .settings import EventLogSettings
from .spool import SpoolFullError

__all__ = [
    "AppKeys",
    "ConfigChangedError",
    "EmbeddedRedis",
    "EventLog",
    "EventLogSettings",
    "EventLogUnavailable",
    "ModelConflictError",
    "ModelRecord",
    "RewardOutcome",
    "SpoolFullError",
    "UnknownAppError",
    "connect",
    "connect_or_start",
    "is_cluster",
]
