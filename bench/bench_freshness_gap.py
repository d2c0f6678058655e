"""Freshness as learning quality: the HTTP loop against an in-memory replay, same draws.

    python bench/bench_freshness_gap.py [--dataset digits] [--rate 50] [--shuffles 1]

A supervised stream (a scikit-learn dataset as a contextual bandit: one action per class,
reward 1 for the right one; one pass in a shuffled order) is played through the running
service (`banditrec serve`'s stack: HAProxy, a replica, Redis, the learner pool with its
default publish cadence), one request at a time at --rate decisions/s (0: as fast as it
answers), each reward sent as soon as its decision comes. App config: VW with the
context x label interaction (so it learns), rewards joined on arrival.

Then the same stream is replayed in memory: a DecisionEngine of the same config decides
each event with the same event id (so the same random number draws the action) from a
model that has learned every earlier event of the service's own log, and learns that
event's logged record and reward before the next one. Both loops see the same data and
the same draws; the served model is merely as old as the publish cadence and the swap
make it. The gap in progressive 0/1 loss is what that staleness costs.

Figure (issue: policies that personalize out of the box, item 5): gap <= 1 percentage point.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from _service import bench_options
from banditrec import DecisionEngine
from banditrec.config import AppConfig
from banditrec.decision.record import set_reward
from banditrec.decision.schema import DecisionRequest
from banditrec.envs.supervised import SupervisedBanditEnv
from banditrec.eventlog import EventLog, connect
from banditrec.serving.runner import LocalService
from banditrec.serving.settings import ServiceSettings

TARGET_GAP_PP = 1.0


def app_config(name: str) -> AppConfig:
    return AppConfig.model_validate(
        {
            "name": name,
            "policy": {"kind": "vw", "interactions": ["xl"]},
            "reward": {"wait_seconds": 600, "join_on_first": True, "aggregation": "first"},
        }
    )


def stream(dataset: str, seed: int):
    env = SupervisedBanditEnv(dataset)
    order = np.random.default_rng(seed).permutation(len(env.X))
    batch = env._contexts(order)  # one pass over the data, in a shuffled order
    return [
        (batch.context(i), batch.actions(i), env.class_names[env.y[row]])
        for i, row in enumerate(order)
    ]


def in_memory(log: EventLog, name: str, events: list, seed: int, rewards: list[float]) -> float:
    """Progressive 0/1 loss of a model that is never stale, on the service's own log."""
    engine = DecisionEngine(app_config(name))
    wrong = 0
    for i, (context, actions, label) in enumerate(events):
        event_id = f"s{seed}-{i}"
        request = DecisionRequest(event_id=event_id, context=context, actions=actions)
        wrong += engine.decide(request).action_id != label
        (record,) = log.decisions.records(name, event_id)
        engine.learn(set_reward(record, rewards[i]))
    return wrong / len(events)


def over_http(url: str, name: str, events: list, seed: int, rate: float) -> list[float]:
    rewards = []
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30) as http:
        for i, (context, actions, label) in enumerate(events):
            if rate > 0:
                time.sleep(max(0.0, started + i / rate - time.perf_counter()))
            body = {"event_id": f"s{seed}-{i}", "context": context, "actions": actions}
            r = http.post(f"/v1/apps/{name}/decisions", json=body)
            r.raise_for_status()
            decision = r.json()
            rewards.append(float(decision["action_id"] == label))
            r = http.post(
                f"/v1/apps/{name}/rewards",
                json={"event_id": decision["event_id"], "value": rewards[-1]},
            )
            r.raise_for_status()
    return rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--rate", type=float, default=50.0, help="decisions/s; 0: unpaced")
    parser.add_argument("--shuffles", type=int, default=1)
    parser.add_argument("--publish-every", type=float, default=None, help="default: the service's")
    args = parser.parse_args()
    names = [f"gap{s}" for s in range(args.shuffles)]
    settings = ServiceSettings(apps=[app_config(n) for n in names])
    if args.publish_every is not None:
        settings.learners.publish_every_s = args.publish_every
    options = bench_options(settings, "bench-gap-", 1)
    gaps = []
    with LocalService(options) as service:
        for seed, name in enumerate(names):
            events = stream(args.dataset, seed)
            rewards = over_http(service.url, name, events, seed, args.rate)
            http_loss = 1.0 - float(np.mean(rewards))
            memory = in_memory(EventLog(connect(service.redis_url)), name, events, seed, rewards)
            gaps.append(100 * (http_loss - memory))
            print(
                f"{args.dataset} shuffle {seed}: {len(events)} events at "
                f"{args.rate or 'unpaced'} /s: 0/1 loss HTTP {http_loss:.4f}, in memory "
                f"{memory:.4f}, gap {gaps[-1]:+.2f} pp"
            )
    mean = float(np.mean(gaps))
    verdict = "PASS" if mean <= TARGET_GAP_PP else "FAIL"
    print(f"mean gap {mean:+.2f} pp (target <= {TARGET_GAP_PP} pp): {verdict}")


if __name__ == "__main__":
    main()
