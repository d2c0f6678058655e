"""Prometheus metrics of the whole service, whichever replica answers the scrape.

A scrape through the load balancer reaches one replica of many, so a replica's own
counters would come and go between scrapes. Instead every replica adds the increments of
its counters and histograms (decisions, rewards received, errors, request latency) to one
Redis hash once per refresh (`flush`), and `/metrics` renders, from Redis:

- those counters and histograms, summed over the replicas;
- per app, the event log's counters (`banditrec_eventlog_total{app,counter}`: decisions
  logged, rewards, joined, learned, orphans, ...);
- per app and arm, the report totals: joined decisions, reward sum and sum of squares,
  explored decisions, the default action's IPS sum, so that
  `rate(banditrec_reward_sum_total[5m]) / rate(banditrec_joined_decisions_total[5m])` is
  the service's mean reward;
- per app, gauges read at scrape time: model version, pending events, join and learner lag;
- the answering replica's own state, labelled `replica`: `banditrec_config_stale{app}` and
  `banditrec_degraded{app,reason}`;
- `banditrec_replicas`: how many replicas flushed within the last `REPLICA_TTL_S`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Metric, generate_latest
from prometheus_client.registry import Collector

from ..eventlog import AppKeys, EventLog
from .store import ReportStore

METRICS_KEY = "br:metrics"  # hash: [family, sample, labels] as JSON -> value summed over replicas
REPLICAS_KEY = "br:metrics:replicas"  # hash: replica id -> unix time of its last flush
REPLICA_TTL_S = 30.0
_SUMMED = ("counter", "histogram")
_REPORT_COUNTERS = {
    "n": ("banditrec_joined_decisions", "Joined decisions (each counted once, by arm)."),
    "r": ("banditrec_reward_sum", "Sum of joined rewards (missing rewards as the default)."),
    "q": ("banditrec_reward_squared_sum", "Sum of squared joined rewards."),
    "x": ("banditrec_explored_decisions", "Joined decisions that did not serve the top action."),
    "b": ("banditrec_default_action_ips_sum", "Σ r·1[a = default]/p: the default action's IPS."),
}
_GAUGES = {
    "model_version": "Model version published.",
    "pending_events": "Decisions waiting for rewards.",
    "join_lag_seconds": "How long the oldest decision past its reward wait has waited.",
    "learner_lag_events": "Joined events the published model has not learned yet.",
    "learner_lag_seconds": "How long ago the oldest joined event not yet learned was joined.",
}
# The answering replica's own state, labelled with its id: not summed, not from Redis.
_REPLICA_GAUGES = ("banditrec_config_stale", "banditrec_degraded")


class ClusterMetrics:
    """One replica's side: flush its counters to Redis; render the service's metrics."""

    def __init__(self, log: EventLog, registry: CollectorRegistry, replica_id: str) -> None:
        self.log = log
        self.registry = registry
        self.replica_id = replica_id
        self._flushed: dict[bytes, float] = {}

    def _values(self) -> dict[bytes, float]:
        out = {}
        for family in self.registry.collect():
            if family.type not in _SUMMED:
                continue
            for s in family.samples:
                if not s.name.endswith("_created"):
                    out[orjson.dumps([family.name, s.name, sorted(s.labels.items())])] = s.value
        return out

    def flush(self, now: float | None = None) -> int:
        """Add this replica's increments since the last flush to Redis; how many changed."""
        values = self._values()
        deltas = {k: v - self._flushed.get(k, 0.0) for k, v in values.items()}
        deltas = {k: d for k, d in deltas.items() if d}
        pipe = self.log.client.pipeline(transaction=False)
        for field, delta in deltas.items():
            pipe.hincrbyfloat(METRICS_KEY, field, delta)
        pipe.hset(REPLICAS_KEY, self.replica_id, repr(time.time() if now is None else now))
        pipe.execute()  # if Redis fails, nothing is marked flushed: the next flush adds it
        self._flushed.update({k: values[k] for k in deltas})
        return len(deltas)

    def render(self, apps: Iterable[str]) -> bytes:
        registry = CollectorRegistry()
        registry.register(_FromRedis(self, list(apps)))
        return generate_latest(registry)


class _FromRedis(Collector):
    def __init__(self, owner: ClusterMetrics, apps: list[str]) -> None:
        self.owner = owner
        self.apps = apps

    def collect(self) -> Iterator[Metric]:
        yield from self._replica_sums()
        yield from self._app_metrics()
        yield from self._replica_state()

    def _replica_state(self) -> Iterator[Metric]:
        replica = {"replica": self.owner.replica_id}
        for family in self.owner.registry.collect():
            if family.name in _REPLICA_GAUGES:
                metric = Metric(family.name, family.documentation, family.type)
                for s in family.samples:
                    metric.add_sample(s.name, {**s.labels, **replica}, s.value)
                yield metric

    def _replica_sums(self) -> Iterator[Metric]:
        client = self.owner.log.client
        raw = client.hgetall(METRICS_KEY)
        families: dict[str, list[tuple[str, dict[str, str], float]]] = defaultdict(list)
        for field, value in raw.items():
            family, sample, labels = orjson.loads(field)
            families[family].append((sample, dict(labels), float(value)))
        # Every family some replica flushed, whether or not this one has served it yet
        # (e.g. slates' exposure counter, registered on first use).
        docs = {f.name: (f.type, f.documentation) for f in self.owner.registry.collect()}
        summed_here = {n for n, (kind, _) in docs.items() if kind in _SUMMED}
        for name in sorted(set(families) | summed_here):
            samples = families.get(name, [])
            kind = "histogram" if any(s.endswith("_bucket") for s, _, _ in samples) else "counter"
            kind, doc = docs.get(name, (kind, name.replace("_", " ")))
            if kind not in _SUMMED:
                continue
            metric = Metric(name, doc, kind)
            for sample, labels, value in sorted(samples, key=_histogram_order):
                metric.add_sample(sample, labels, value)
            yield metric
        now = time.time()
        alive = sum(
            1 for t in client.hgetall(REPLICAS_KEY).values() if now - float(t) < REPLICA_TTL_S
        )
        replicas = Metric("banditrec_replicas", "Replicas that flushed recently.", "gauge")
        replicas.add_sample("banditrec_replicas", {}, alive)
        yield replicas

    def _app_metrics(self) -> Iterator[Metric]:
        log = self.owner.log
        totals = ReportStore(log.client).totals(self.apps)
        eventlog = Metric("banditrec_eventlog", "Event log counters of an app.", "counter")
        report = {k: Metric(name, doc, "counter") for k, (name, doc) in _REPORT_COUNTERS.items()}
        gauges = {k: Metric(f"banditrec_{k}", doc, "gauge") for k, doc in _GAUGES.items()}
        now = time.time()
        for app in self.apps:
            stats = log.client.hgetall(AppKeys(app).stats)  # counters only, not stats()'s gauges
            for counter, value in sorted(stats.items()):
                labels = {"app": app, "counter": counter.decode()}
                eventlog.add_sample("banditrec_eventlog_total", labels, float(value))
            for arm, sums in sorted(totals[app].items()):
                for key, metric in report.items():
                    metric.add_sample(
                        metric.name + "_total", {"app": app, "arm": arm}, sums.get(key, 0.0)
                    )
            lag = log.joined.lags(app, now=now)
            values: dict[str, Any] = {
                "model_version": log.models.version(app),
                "pending_events": lag.pending,
                "join_lag_seconds": lag.join_lag_s,
                "learner_lag_events": lag.learner_lag_events,
                "learner_lag_seconds": lag.learner_lag_s,
            }
            for key, metric in gauges.items():
                metric.add_sample(metric.name, {"app": app}, values[key])
        yield eventlog
        yield from report.values()
        yield from gauges.values()


def _histogram_order(item: tuple[str, dict[str, str], float]) -> tuple:
    sample, labels, _ = item
    le = labels.get("le")
    bound = float("inf") if le in (None, "+Inf") else float(le)
    return (sorted((k, v) for k, v in labels.items() if k != "le"), sample, bound)
