"""Prometheus metrics of one replica, served at `/metrics`.

Counters are per replica (Prometheus sums them over scraped targets); gauges that come
from Redis (model version, lags) are the same on every replica.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "banditrec_decisions", "Decisions served.", ["app", "mode"], registry=r
        )
        self.repeated = Counter(
            "banditrec_repeated_decisions",
            "Requests for an event id already decided, answered with the logged decision.",
            ["app"],
            registry=r,
        )
        self.rewards = Counter(
            "banditrec_rewards", "Rewards received, by outcome.", ["app", "outcome"], registry=r
        )
        self.errors = Counter(
            "banditrec_errors", "Error answers, by status.", ["app", "status"], registry=r
        )
        self.latency = Histogram(
            "banditrec_request_seconds",
            "Time in the replica per request, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "banditrec_model_version", "Model version served.", ["app"], registry=r
        )
        self.exploration = Gauge(
            "banditrec_exploration_rate",
            "Mean probability of serving an action other than the most likely one, "
            "over the decisions since the last refresh.",
            ["app"],
            registry=r,
        )
        self.join_lag = Gauge(
            "banditrec_join_lag_seconds",
            "How long the oldest decision past its reward wait has been waiting to be joined.",
            ["app"],
            registry=r,
        )
        self.learner_lag = Gauge(
            "banditrec_learner_lag_events",
            "Joined events the published model has not learned yet.",
            ["app"],
            registry=r,
        )
        self.learner_lag_seconds = Gauge(
            "banditrec_learner_lag_seconds",
            "How long ago the oldest joined event the published model has not learned was joined.",
            ["app"],
            registry=r,
        )
        self.degraded = Gauge(
            "banditrec_degraded",
            "1 while the replica (app '') or an app serves in a degraded state, by reason: "
            "spooling, event_log_unreachable, learner_behind, last_good_config.",
            ["app", "reason"],
            registry=r,
        )
        self._degraded_seen: set[tuple[str, str]] = set()
        self.pending = Gauge(
            "banditrec_pending_events", "Decisions waiting for rewards.", ["app"], registry=r
        )
        self.stale_config = Gauge(
            "banditrec_config_stale",
            "1 while the replica serves the app's last good config: the stored one is unusable.",
            ["app"],
            registry=r,
        )
        # Summed on the request path without a lock per decision: a dict update under
        # the GIL; `flush_exploration` swaps the dict out.
        self._exploration_sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        self._lock = threading.Lock()
        self._decided: dict[tuple[str, str], Any] = {}

    def observe_decision(self, app: str, mode: str, top_probability: float) -> None:
        counter = self._decided.get((app, mode))
        if counter is None:  # labels() takes a lock and builds a key: once per app and mode
            counter = self._decided[app, mode] = self.decisions.labels(app, mode)
        counter.inc()
        acc = self._exploration_sums[app]
        acc[0] += 1.0 - top_probability
        acc[1] += 1

    def flush_exploration(self) -> None:
        with self._lock:
            sums, self._exploration_sums = self._exploration_sums, defaultdict(lambda: [0.0, 0])
        for app, (total, n) in sums.items():
            if n:
                self.exploration.labels(app).set(total / n)

    def set_degraded(self, health: dict[str, Any]) -> None:
        """Mirror `DecisionService.health()`: 1 for each reason now, 0 for those gone."""
        now = {("", reason) for reason in health["degraded"]}
        now |= {(app, reason) for app, reasons in health["apps"].items() for reason in reasons}
        for labels in self._degraded_seen - now:
            self.degraded.labels(*labels).set(0)
        for labels in now:
            self.degraded.labels(*labels).set(1)
        self._degraded_seen |= now

    def render(self) -> bytes:
        return generate_latest(self.registry)
