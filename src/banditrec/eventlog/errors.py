"""What the event log raises; the serving layer maps these to HTTP answers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis
from redis.exceptions import ClusterDownError, MasterDownError, TryAgainError

# Errors that mean "Redis cannot be reached right now" (as opposed to a wrong command).
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError (restarting, AOF still loading)
    redis.TimeoutError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
)


class EventLogUnavailable(RuntimeError):
    """Redis is unreachable and the record could not be kept locally (no spool, or spool full).

    Nothing was acknowledged: answer 503 so the product falls back to its default.
    """


P = ParamSpec("P")
T = TypeVar("T")


def unavailable_as_error(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn`, raising EventLogUnavailable when Redis cannot be reached (what callers catch)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise EventLogUnavailable(f"Redis is unreachable: {exc}") from exc

    return wrapper


class UnknownAppError(LookupError):
    def __init__(self, app: str) -> None:
        super().__init__(f"app {app!r} has no config in Redis: store one with configs.put() first")
        self.app = app


class ModelConflictError(RuntimeError):
    """The current model changed under a learner (another learner, or a rollback): reload."""

    def __init__(self, app: str, expected: int, current: int) -> None:
        super().__init__(
            f"app {app!r}: expected model version {expected} to be current, found {current}"
        )
        self.expected = expected
        self.current = current


class ConfigChangedError(RuntimeError):
    """The app's config changed between reading it and writing it back (a concurrent update)."""

    def __init__(self, app: str, expected: int | None) -> None:
        where = f"from version {expected}" if expected is not None else "on every attempt"
        super().__init__(f"app {app!r}: the config changed under this update ({where})")
        self.app = app


def survive(step: Callable[[], object], logger: logging.Logger, what: str) -> None:
    """One step of a background loop (`what` names it in the log): an outage of the event
    log is a warning and any other error is logged with its traceback; neither ends the loop,
    which retries on its next turn."""
    try:
        step()
    except (*UNAVAILABLE, EventLogUnavailable) as exc:
        logger.warning("%s: event log unavailable (%s); retrying", what, exc)
    except Exception:
        logger.exception("%s failed; retrying", what)
