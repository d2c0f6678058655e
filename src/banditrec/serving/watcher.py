"""What a serving replica runs to follow its app: a new model version or config, read from
the event log's model registry and config store, swapped into its DecisionEngine between
two requests."""

from __future__ import annotations

import logging
import threading

from ..decision.engine import DecisionEngine
from ..decision.record import slot_key
from ..eventlog import EventLog, EventLogUnavailable
from ..eventlog.errors import UNAVAILABLE

log = logging.getLogger(__name__)

REDIS_DOWN = (EventLogUnavailable, *UNAVAILABLE)


class ModelWatcher:
    """Keeps a serving engine on the app's current model and config (`poll` when told of a
    change, or on a timer with `run`)."""

    def __init__(self, event_log: EventLog, app: str, engine: DecisionEngine) -> None:
        self.log = event_log
        self.app = app
        self.engine = engine
        self.config_version = 0
        self.config_error: str | None = None  # set while the last good config serves

    def poll(self) -> bool:
        """Swap in a newer config and/or model; True if the model was swapped."""
        model_version, config_version = self.log.versions(self.app)
        if config_version != self.config_version:
            self._follow_config(config_version)
            self.config_version = config_version
        if model_version == 0 or model_version == self.engine.model_version:
            return False
        record = self.log.models.latest(self.app)
        if record is None:
            return False
        # A slot the published model lacks (just added to the config) keeps what it serves.
        models = dict(record.models)
        expected = {slot_key(slot) for slot in self.engine.config.slot_policies()}
        if expected - models.keys():
            models = {**self.engine.model_bytes(), **models}
        try:
            self.engine.load_models(models, record.version)
        except Exception as exc:  # bytes of another policy kind: keep serving the current model
            log.warning(
                "app %r: model v%d not loadable (%s); keeping v%d",
                self.app,
                record.version,
                exc,
                self.engine.model_version,
            )
            return False
        return True

    def _follow_config(self, version: int) -> None:
        """The stored config, live; one that cannot be used (stored by an older version, or
        a policy this machine cannot build) leaves the last good config serving, reported
        in `config_error` until a usable one is stored."""
        try:
            config = self.log.configs.get(self.app)
            if config is not None:
                self.engine.reconfigure(config)
            self.config_error = None
        except REDIS_DOWN:
            raise
        except Exception as exc:
            self.config_error = (
                f"config v{version} cannot be used ({type(exc).__name__}: {exc}); "
                "serving the last good config"
            )
            log.warning("app %r: %s", self.app, self.config_error)

    def run(self, stop: threading.Event, *, interval_s: float = 0.1) -> None:
        while not stop.is_set():
            try:
                self.poll()
            except REDIS_DOWN:
                pass
            except Exception:
                log.exception("app %r: model watcher poll failed", self.app)
            stop.wait(interval_s)
