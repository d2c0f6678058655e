"""Live app configs in Redis, so every replica, joiner and learner sees the same settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import AppConfig
from .changes import announce
from .errors import ConfigChangedError, UnknownAppError, unavailable_as_error
from .keys import APPS_KEY, AppKeys, check_app_name
from .scripts import Scripts, register
from .settings import EventLogSettings

# KEYS: config, config_version, rules
# ARGV: expected version ('' for any), config json, number of rule pairs, then rule
#       name/value pairs; the retention pairs after them are set only when absent.
# Returns the new version, or -1 when the stored version is not the expected one.
PUT_CONFIG = r"""
if ARGV[1] ~= '' and tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then
  return -1  -- changed since the caller read it: the caller reads it again
end
redis.call('SET', KEYS[1], ARGV[2])
local version = redis.call('INCR', KEYS[2])
local n_rules = tonumber(ARGV[3])
for i = 0, n_rules - 1 do
  redis.call('HSET', KEYS[3], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
for i = 4 + 2 * n_rules, #ARGV, 2 do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1])
end
return version
"""

register("put_config", PUT_CONFIG)


class ConfigStore:
    """Each app's config and the join rules the scripts read from it; a change is announced
    (see `changes`) so replicas, joiners and learners follow it."""

    def __init__(self, client: Any, scripts: Scripts, settings: EventLogSettings) -> None:
        self.client = client
        self.scripts = scripts
        self.settings = settings

    @unavailable_as_error
    def put(self, config: AppConfig, *, expected_version: int | None = None) -> int:
        """Store the config and the join rules the scripts read; returns the config version.

        With `expected_version`, only if the stored version is still that one (a
        compare-and-set); raises ConfigChangedError otherwise."""
        app = check_app_name(config.name)
        k = AppKeys(app)
        s = self.settings
        rules = {
            "wait": repr(float(config.reward.wait_seconds)),
            "default": repr(float(config.reward.default)),
            "agg": config.reward.aggregation,
            "join_on_first": "1" if config.reward.join_on_first else "0",
            "early_grace": repr(float(s.early_grace_s)),
            "joined_ttl": str(int(s.joined_ttl_s)),
            "orphans_max": str(int(s.orphans_max_len)),
        }
        retention_defaults = {
            "keep_n": str(int(s.retention_max_len)),
            "keep_s": repr(float(s.retention_max_age_s)),
        }
        expected = "" if expected_version is None else str(int(expected_version))
        args: list[Any] = [expected, config.model_dump_json(by_alias=True), len(rules)]
        for pairs in (rules, retention_defaults):
            for name, value in pairs.items():
                args += [name, value]
        version = int(self.scripts.call("put_config", [k.config, k.config_version, k.rules], args))
        if version < 0:
            raise ConfigChangedError(app, expected_version)
        self.client.sadd(APPS_KEY, app)
        announce(self.client, app)
        return version

    @unavailable_as_error
    def get_versioned(self, app: str) -> tuple[AppConfig | None, int]:
        """The config and its version, read together (one hash tag: legal on a cluster)."""
        k = AppKeys(check_app_name(app))
        data, version = self.client.mget(k.config, k.config_version)
        config = None if data is None else AppConfig.model_validate_json(data)
        return config, int(version or 0)

    @unavailable_as_error
    def update(
        self, app: str, change: Callable[[AppConfig], AppConfig], *, attempts: int = 20
    ) -> AppConfig:
        """Apply `change` to the stored config and store the result, as one compare-and-set:
        when another writer got in between, read again and apply `change` again, so two
        concurrent updates of different fields both hold."""
        for _ in range(attempts):
            current, version = self.get_versioned(app)
            if current is None:
                raise UnknownAppError(app)
            updated = change(current)
            try:
                self.put(updated, expected_version=version)
            except ConfigChangedError:
                continue
            return updated
        raise ConfigChangedError(app, None)

    @unavailable_as_error
    def get(self, app: str) -> AppConfig | None:
        data = self.client.get(AppKeys(check_app_name(app)).config)
        return None if data is None else AppConfig.model_validate_json(data)

    @unavailable_as_error
    def version(self, app: str) -> int:
        return int(self.client.get(AppKeys(app).config_version) or 0)

    @unavailable_as_error
    def list_apps(self) -> list[str]:
        return sorted(m.decode() for m in self.client.smembers(APPS_KEY))

    @unavailable_as_error
    def set_retention(
        self, app: str, *, max_len: int | None = None, max_age_s: float | None = None
    ) -> None:
        k = AppKeys(check_app_name(app))
        fields: dict[str, str] = {}
        if max_len is not None:
            if max_len < 1:
                raise ValueError("max_len must be at least 1")
            fields["keep_n"] = str(int(max_len))
        if max_age_s is not None:
            if max_age_s <= 0:
                raise ValueError("max_age_s must be positive")
            fields["keep_s"] = repr(float(max_age_s))
        if fields:
            self.client.hset(k.rules, mapping=fields)

    @unavailable_as_error
    def retention(self, app: str) -> tuple[int, float]:
        n, s = self.client.hmget(AppKeys(app).rules, "keep_n", "keep_s")
        defaults = self.settings
        return (
            int(n) if n is not None else defaults.retention_max_len,
            float(s) if s is not None else defaults.retention_max_age_s,
        )
