"""The whole path on a real 3-master Redis Cluster: every script touches one hash tag."""

from __future__ import annotations

from pathlib import Path

from redis.cluster import RedisCluster

from banditrec.config import AppConfig, RewardConfig
from banditrec.decision.engine import DecisionEngine
from banditrec.decision.schema import Reward
from banditrec.eventlog import EventLog, RewardOutcome, connect
from banditrec.eventlog.export import export_joined
from banditrec.learner import Learner
from banditrec.serving.watcher import ModelWatcher
from tests.plugins.redis_server import make_requests


def test_full_path_on_a_cluster(cluster_url: str, tmp_path: Path) -> None:
    client = connect(cluster_url)
    assert isinstance(client, RedisCluster)
    log = EventLog(client, spool_dir=tmp_path / "spool")
    apps = ["news", "email", "push"]  # spread over the cluster's slots
    for app in apps:
        config = AppConfig(name=app, reward=RewardConfig(wait_seconds=0.0, aggregation="sum"))
        log.configs.put(config)
        engine = DecisionEngine(config)
        decided = [engine.decide_logged(r) for r in make_requests(200, seed=len(app))]
        assert (
            log.decisions.write(app, [rec for _, recs in decided for rec in recs]) == [None] * 200
        )
        rewards = [Reward(event_id=d.event_id, value=1.0) for d, _ in decided[::2]]
        assert set(log.rewards.add_rewards(app, rewards)) == {RewardOutcome.ACCEPTED}
        assert log.rewards.add_reward(app, "early-bird", 1.0) is RewardOutcome.EARLY
        assert log.rewards.activate(app, decided[0][0].event_id) is True
        assert log.join.join_due(app) == 200
        learner = Learner(log, app)
        assert learner.step() == 200
        watcher = ModelWatcher(log, app, DecisionEngine(config))
        assert watcher.poll() and watcher.engine.model_version == 1
        assert log.models.rollback(app, 1) == 2
        stats = log.joined.stats(app)
        assert (stats["decisions"], stats["joined"], stats["learned"], stats["rewards"]) == (
            200,
            200,
            200,
            100,
        )
        assert export_joined(log, app, tmp_path / f"{app}.dsjson") == 200
        assert log.joined.trim(app) == 0
    assert set(apps) <= set(log.configs.list_apps())
    slots = {client.keyslot(f"br:{{{app}}}:x") for app in apps}
    assert len(slots) == 3
    for app in apps:
        assert log.drop_app(app) > 0
    log.close()
