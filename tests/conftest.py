"""Shared fixtures; each area keeps its own in tests/plugins/."""

pytest_plugins = [
    "tests.plugins.redis_server",
    "tests.plugins.redis_cluster",
    "tests.plugins.ray_cluster",
]
