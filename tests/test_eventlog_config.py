"""App configs in Redis: updates are compare-and-set, so concurrent changes of different
fields all hold (no update is lost to a writer that read the config before it)."""

from __future__ import annotations

import threading
import time

import pytest

from banditrec.config import AppConfig
from banditrec.eventlog import ConfigChangedError, EventLog, UnknownAppError


def test_put_with_an_expected_version_is_a_compare_and_set(
    event_log: EventLog, app_name: str
) -> None:
    config = AppConfig(name=app_name)
    first = event_log.configs.put(config)
    second = event_log.configs.put(config, expected_version=first)
    assert second == first + 1
    with pytest.raises(ConfigChangedError):
        event_log.configs.put(config, expected_version=first)  # stale: someone wrote since
    assert event_log.configs.version(app_name) == second


def test_concurrent_updates_of_different_fields_all_hold(
    event_log: EventLog, app_name: str
) -> None:
    event_log.configs.put(AppConfig(name=app_name))
    rounds = 25

    start = threading.Barrier(2)

    def slowly(change):  # reads, then writes 2 ms later: the other writer gets in between
        def apply(config: AppConfig) -> AppConfig:
            time.sleep(0.002)
            return change(config)

        return apply

    def set_default_reward() -> None:
        start.wait()
        for i in range(rounds):
            event_log.configs.update(
                app_name,
                slowly(
                    lambda c, i=i: c.model_copy(
                        update={"reward": c.reward.model_copy(update={"default": float(i)})}
                    )
                ),
            )

    def set_wait() -> None:
        start.wait()
        for i in range(rounds):
            event_log.configs.update(
                app_name,
                lambda c, i=i: c.model_copy(
                    update={"reward": c.reward.model_copy(update={"wait_seconds": 100.0 + i})}
                ),
            )

    threads = [threading.Thread(target=f) for f in (set_default_reward, set_wait)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = event_log.configs.get(app_name)
    assert final is not None
    assert final.reward.default == rounds - 1  # neither writer's last change was lost
    assert final.reward.wait_seconds == 100.0 + rounds - 1
    assert event_log.configs.version(app_name) == 1 + 2 * rounds  # every update stored once


def test_updating_an_app_without_a_config_is_an_unknown_app(
    event_log: EventLog, app_name: str
) -> None:
    with pytest.raises(UnknownAppError):
        event_log.configs.update(app_name, lambda c: c)
