"""The per-app online learner, the joiner loop, and the watcher that swaps new models in.

Learner: one writer per app (a Redis lease). It resumes from the offset stored with the
current model, learns the joined events after it, and publishes model bytes and the new
offset in one atomic write, as a compare-and-set on the version it started from. A crash
loses only what was learned since the last publish, and that is read again from the stored
offset: every event ends up in the published model exactly once.

ModelWatcher: what a serving replica runs: it notices a new model version (or config) and
swaps it into its DecisionEngine between two requests.

`run_app_workers` runs an app's joiner and learner until a stop event is set (what the
serving layer starts in a background thread or actor).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from .config import AppConfig
from .engine import SINGLE, DecisionEngine, UnknownSlotError
from .eventlog import (
    EventLog,
    EventLogUnavailable,
    ModelConflictError,
    ModelRecord,
    UnknownAppError,
)
from .eventlog.errors import UNAVAILABLE
from .eventlog.records import joined_header, joined_record
from .features import vw_line_problem
from .policies import Policy, VWPolicy, load_policy, make_policy

log = logging.getLogger(__name__)

REDIS_DOWN = (EventLogUnavailable, *UNAVAILABLE)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC during a batch. Its records are acyclic and freed by reference counting,
    while full collections, which walk the whole heap, were a third of the learner's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _VWDirect:
    """VW slots learn straight from the logged DSJson bytes plus the joined reward: VW's own
    DSJson parser reads them, which skips the decode → FeatureSet → re-encode round trip of
    `engine.learn` (~1.4x faster at 10 actions x 20 features) and trains the byte-identical
    model (tested against `engine.learn`). Deferred events, other policies and 'logging'
    mode take `engine.learn`."""

    @staticmethod
    def targets(engine: DecisionEngine) -> dict[bytes, VWPolicy]:
        """Per slot (as in the joined entry's header), the VW policy that learns it."""
        if engine.config.mode == "logging":
            return {}
        return {
            (slot or SINGLE).encode(): policy
            for slot, policy in engine.policies.items()
            if isinstance(policy, VWPolicy)
        }

    @staticmethod
    def learn(targets: dict[bytes, VWPolicy], fields: dict[bytes, bytes]) -> bool | None:
        """True once learned; None when the record is for the engine's path."""
        record = fields[b"rec"]
        head = joined_header(fields)
        target = targets.get(head.slot)
        # A deferred event's `_skipLearn` depends on its activation: set_reward decides it.
        if target is None or b'"_skipLearn":false' not in record or not record.startswith(b"{"):
            return None
        # The cost as dsjson.set_reward writes it, on the policy's scale.
        cost = target.cost_scale.cost(head.reward)
        line = b'{"_label_cost":' + repr(cost).encode() + b"," + record[1:]
        if vw_line_problem(line) is not None:
            return None  # never to VW as it is: the engine's path escapes it, or refuses it
        target.learn_dsjson(line)  # VW parses the bytes as they came from Redis
        return True


@dataclass(slots=True)
class LearnerState:
    """What the learner has consumed, relative to the model version it started from."""

    base_version: int = 0  # the published version this in-memory model extends
    offset: str = "0-0"  # last joined-stream id consumed
    published_offset: str = "0-0"
    n_consumed: int = 0  # joined events consumed through `offset`, over the app's life
    learned_since_publish: int = 0
    skipped_since_publish: int = 0
    config_version: int = 0


class Learner:
    def __init__(
        self, event_log: EventLog, app: str, *, batch: int = 2000, lease_ttl_s: float = 4.0
    ) -> None:
        self.log = event_log
        self.app = app
        self.batch = batch
        self.lease_ttl_s = lease_ttl_s
        self.token = uuid.uuid4().hex
        self.engine: DecisionEngine | None = None
        self.state = LearnerState()
        self._direct = _VWDirect()

    # --- state --------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the engine from the app's config and its current model; forget the rest."""
        config_version = self.log.config_version(self.app)
        config = self.log.get_config(self.app)
        if config is None:
            raise UnknownAppError(self.app)
        record = self.log.latest_model(self.app)
        state = LearnerState(config_version=config_version)
        if record is None:
            engine = DecisionEngine(config)
        else:
            engine = DecisionEngine(config, _policies(self.app, config, record), record.version)
            state.base_version = record.version
            state.offset = state.published_offset = record.offset
            state.n_consumed = record.n_learned
        self.engine, self.state = engine, state

    @property
    def pending(self) -> int:
        """Events consumed since the last publish."""
        return self.state.learned_since_publish + self.state.skipped_since_publish

    def _engine(self) -> DecisionEngine:
        if self.engine is None:
            self.load()
        assert self.engine is not None
        return self.engine

    def _follow_config(self) -> None:
        version = self.log.config_version(self.app)
        if version != self.state.config_version:
            try:
                config = self.log.get_config(self.app)
                if config is not None:
                    self._engine().reconfigure(config)
            except REDIS_DOWN:
                raise
            except Exception as exc:  # unusable: learn on with the last good config
                log.warning("app %r: config v%d cannot be used (%s)", self.app, version, exc)
            self.state.config_version = version

    # --- learning -----------------------------------------------------------------

    def learn_available(self, max_events: int | None = None, block_ms: int | None = None) -> int:
        """Learn joined events after the offset (up to max_events); returns how many were consumed."""
        engine = self._engine()
        state = self.state
        limit = max_events or self.batch
        entries = self.log.read_joined_raw(self.app, state.offset, min(limit, self.batch), block_ms)
        with _gc_paused():
            self._learn_entries(engine, entries)
        return len(entries)

    def _learn_entries(
        self, engine: DecisionEngine, entries: list[tuple[str, dict[bytes, bytes]]]
    ) -> None:
        state = self.state
        direct = self._direct.targets(engine)
        scales = engine.config.cost_scales()
        for stream_id, fields in entries:
            try:
                learned = _VWDirect.learn(direct, fields)
                if learned is None:
                    learned = engine.learn(joined_record(fields, scales))
            except UnknownSlotError as exc:  # a slot removed from the config since
                log.warning("app %r: joined event %s not learned: %s", self.app, stream_id, exc)
                learned = False
            except Exception as exc:  # a poison event: kept aside, and learning goes on
                log.warning("app %r: joined event %s quarantined: %r", self.app, stream_id, exc)
                self.log.quarantine.add(self.app, stream_id, fields, f"{type(exc).__name__}: {exc}")
                learned = False
            if learned:
                state.learned_since_publish += 1
            else:
                state.skipped_since_publish += 1
            state.offset = stream_id
            state.n_consumed += 1

    def publish(self) -> int | None:
        """Publish model + offset if anything was consumed; None if nothing to publish or if
        the current model changed under this learner (then it reloads and goes on from there)."""
        state = self.state
        if state.offset == state.published_offset:
            return None
        engine = self._engine()
        try:
            version = self.log.publish_model(
                self.app,
                engine.model_bytes(),
                state.offset,
                state.n_consumed,
                expected_version=state.base_version,
                learned_delta=state.learned_since_publish,
                skipped_delta=state.skipped_since_publish,
            )
        except ModelConflictError as exc:
            log.warning("app %r: %s; reloading the current model", self.app, exc)
            self.load()
            return None
        unmatched = sum(
            p.interactions.take_unmatched_events()
            for p in engine.policies.values()
            if isinstance(p, VWPolicy)
        )
        if unmatched:
            self.log.add_counts(self.app, {"unmatched_interaction_events": unmatched})
        state.base_version = version
        state.published_offset = state.offset
        state.learned_since_publish = state.skipped_since_publish = 0
        return version

    def step(self, max_events: int = 10_000) -> int:
        """Learn up to max_events joined events and publish; returns how many were consumed."""
        self._engine()
        self._follow_config()
        n = 0
        while n < max_events:
            got = self.learn_available(max_events - n)
            n += got
            if got == 0:
                break
        self.publish()
        return n

    def run(
        self,
        stop: threading.Event,
        *,
        publish_every_s: float = 0.1,
        publish_every_n: int = 20_000,
        block_ms: int = 1000,
        trim_every_s: float = 10.0,
    ) -> None:
        """Learn until `stop` is set, publishing at least every `publish_every_s` seconds (when
        there is something new) or every `publish_every_n` events. Holds the app's lease;
        waits as a standby while another learner holds it.

        Between events it waits on Redis (a blocking XREAD of up to `block_ms`, shorter when
        a publish falls due sooner): new joined events wake it at once, and an idle learner
        sleeps. An event after a quiet spell is published right away."""
        holding = False
        last_publish = last_renew = last_trim = time.monotonic()
        while not stop.is_set():
            try:
                now = time.monotonic()
                if not holding:
                    holding = (
                        self.log.models.acquire_lease(self.app, self.lease_ttl_s, self.token)
                        is not None
                    )
                    if not holding:
                        stop.wait(self.lease_ttl_s / 4)
                        continue
                    self.load()  # another learner may have published since we last looked
                    last_renew = now
                elif now - last_renew > self.lease_ttl_s / 4:
                    holding = self.log.models.renew_lease(self.app, self.token, self.lease_ttl_s)
                    last_renew = now
                    if not holding:
                        log.warning("app %r: learner lease lost; standing by", self.app)
                        continue
                    self._follow_config()
                # Never block past the next renewal: a lease that runs out hands the app over.
                wait_ms = min(block_ms, int(self.lease_ttl_s * 250))
                if self.pending:  # learned, not yet published: wake up when that falls due
                    wait_ms = int(max(0.0, last_publish + publish_every_s - now) * 1000)
                self.learn_available(block_ms=wait_ms or None)
                now = time.monotonic()
                if self.pending >= publish_every_n or (
                    self.pending and now - last_publish >= publish_every_s
                ):
                    self.publish()
                    last_publish = now
                if now - last_trim >= trim_every_s:
                    self.log.trim_joined(self.app)
                    last_trim = now
            except REDIS_DOWN as exc:
                log.warning("app %r: learner waiting for Redis: %s", self.app, exc)
                stop.wait(1.0)
            except UnknownAppError:
                stop.wait(1.0)
            except Exception:  # keep the app's learner alive; the next loop starts clean
                log.exception("app %r: learner loop failed; reloading", self.app)
                stop.wait(1.0)
                with contextlib.suppress(Exception):
                    self.load()
        with contextlib.suppress(*REDIS_DOWN):
            if holding:
                self.publish()
                self.log.models.release_lease(self.app, self.token)


def _policies(app: str, config: AppConfig, record: ModelRecord) -> dict[str | None, Policy]:
    """Each slot's policy from the published bytes; a slot that is new, or whose model no
    longer fits its config (another policy kind), starts fresh."""
    policies: dict[str | None, Policy] = {}
    for slot, policy_config in config.slot_policies().items():
        data = record.models.get(slot or SINGLE)
        try:
            policies[slot] = (
                make_policy(policy_config) if data is None else load_policy(policy_config, data)
            )
        except Exception as exc:  # VW or numpy refusing the bytes: say so, do not stop learning
            log.warning(
                "app %r slot %r: model v%d not loadable (%s); starting it fresh",
                app,
                slot,
                record.version,
                exc,
            )
            policies[slot] = make_policy(policy_config)
    return policies


class Joiner:
    """Moves due decisions to the joined stream. Any number may run for one app."""

    def __init__(self, event_log: EventLog, app: str, *, limit: int = 1000) -> None:
        self.log = event_log
        self.app = app
        self.limit = limit

    def run(
        self,
        stop: threading.Event,
        *,
        interval_s: float = 0.05,
        idle_interval_s: float = 1.0,
        idle_after_s: float = 5.0,
    ) -> None:
        """Join until `stop` is set. Looks every `interval_s` while decisions come in; once
        nothing has arrived or been joined for `idle_after_s`, every `idle_interval_s`,
        and never later than the next join deadline."""
        last_active = time.monotonic()
        last_pending = -1
        while not stop.is_set():
            try:
                if self.log.join_due(self.app, limit=self.limit) > 0:
                    last_active = time.monotonic()
                    continue
                pending, next_due = self.log.next_due(self.app)
                now = time.monotonic()
                if pending != last_pending:
                    last_active, last_pending = now, pending
                wait = interval_s if now - last_active < idle_after_s else idle_interval_s
                if next_due is not None:
                    wait = min(wait, max(interval_s / 5, next_due - time.time()))
                stop.wait(wait)
            except REDIS_DOWN as exc:
                log.warning("app %r: joiner waiting for Redis: %s", self.app, exc)
                stop.wait(1.0)
            except Exception:  # keep joining; the pending events stay where they are
                log.exception("app %r: join failed; retrying", self.app)
                stop.wait(1.0)


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
        record = self.log.latest_model(self.app)
        if record is None:
            return False
        # A slot the published model lacks (just added to the config) keeps what it serves.
        models = dict(record.models)
        expected = {slot or SINGLE for slot in self.engine.config.slot_policies()}
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
            config = self.log.get_config(self.app)
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


class AppWorker:
    """An app's joiner and learner, in two daemon threads."""

    def __init__(
        self,
        event_log: EventLog,
        app: str,
        *,
        join_interval_s: float = 0.05,
        publish_every_s: float = 0.1,
        publish_every_n: int = 20_000,
    ) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.joiner = Joiner(event_log, app)
        self.learner = Learner(event_log, app)
        self._threads = [
            threading.Thread(
                target=self.joiner.run,
                args=(self.stop_event,),
                kwargs={"interval_s": join_interval_s},
                name=f"joiner-{app}",
                daemon=True,
            ),
            threading.Thread(
                target=self.learner.run,
                args=(self.stop_event,),
                kwargs={"publish_every_s": publish_every_s, "publish_every_n": publish_every_n},
                name=f"learner-{app}",
                daemon=True,
            ),
        ]

    def start(self) -> AppWorker:
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout=timeout_s)


def run_app_workers(event_log: EventLog, app: str, stop: threading.Event, **options: float) -> None:
    """Run the app's joiner and learner until `stop` is set (blocking)."""
    worker = AppWorker(event_log, app, **options).start()  # type: ignore[arg-type]
    stop.wait()
    worker.stop()
