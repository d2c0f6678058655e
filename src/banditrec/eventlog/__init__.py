"""Redis: decisions → rewards → join → joined stream, configs, model registry, embedded server.

`EventLog` (log.py) composes one room per step; layout and every reward outcome:
docs/eventlog.md.
"""

from .connection import connect, connect_or_start, is_cluster
from .decisions import DecisionLog
from .errors import ConfigChangedError, EventLogUnavailable, ModelConflictError, UnknownAppError
from .join import Join, Joiner
from .joined import JoinedStream, Lags
from .keys import AppKeys
from .log import EventLog
from .registry import ModelRecord
from .rewards import RewardOutcome, Rewards
from .server import EmbeddedRedis
from .settings import EventLogSettings
from .spool import SpoolFullError

__all__ = [
    "AppKeys",
    "ConfigChangedError",
    "DecisionLog",
    "EmbeddedRedis",
    "EventLog",
    "EventLogSettings",
    "EventLogUnavailable",
    "Join",
    "JoinedStream",
    "Joiner",
    "Lags",
    "ModelConflictError",
    "ModelRecord",
    "RewardOutcome",
    "Rewards",
    "SpoolFullError",
    "UnknownAppError",
    "connect",
    "connect_or_start",
    "is_cluster",
]
