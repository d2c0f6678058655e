"""Redis clients from a URL: standalone or Cluster, plain or TLS, with a password or an ACL user.

URL forms (the REDIS_URL environment variable takes the same):
  redis://[user:password@]host:port/db          standalone
  rediss://...                                  standalone over TLS
  redis+cluster://[user:password@]host:port     Redis Cluster (any node as the seed)
  rediss+cluster://...                          Redis Cluster over TLS
  redis://host:port?cluster=true                Cluster, for tools that only accept redis(s)://
TLS options pass through redis-py's query parameters (ssl_cert_reqs, ssl_ca_certs, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from .server import EmbeddedRedis

RedisClient = redis.Redis | RedisCluster

ENV_URL = "REDIS_URL"
_TRUE = {"1", "true", "yes", "on"}


def _retry() -> Retry:
    # redis-py's default retries for seconds; a decision must not wait that long for a
    # Redis that is down (its record goes to the spool instead).
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2)


def split_cluster_url(url: str) -> tuple[str, bool]:
    """The URL redis-py understands, and whether it names a Redis Cluster."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    cluster = False
    if scheme.endswith("+cluster"):
        scheme = scheme.removesuffix("+cluster")
        cluster = True
    if scheme not in ("redis", "rediss"):
        raise ValueError(
            f"unsupported Redis URL scheme {parts.scheme!r}: use redis://, rediss:// "
            "(TLS), redis+cluster:// or rediss+cluster://"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = []
    for k, v in query:
        if k == "cluster":
            cluster = cluster or v.lower() in _TRUE
        else:
            kept.append((k, v))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment)), cluster


def connect(
    url: str | None = None,
    *,
    socket_timeout_s: float = 5.0,
    connect_timeout_s: float = 1.0,
) -> RedisClient:
    """A client for `url` (or $REDIS_URL). Responses stay bytes: model bytes are binary.

    With neither, raise: the caller decides whether to start an `EmbeddedRedis`
    (see `connect_or_start`).
    """
    url = url or os.environ.get(ENV_URL)
    if not url:
        raise ValueError(
            f"no Redis URL: pass one or set {ENV_URL} (or use connect_or_start() to run "
            "the embedded redis-server)"
        )
    plain, cluster = split_cluster_url(url)
    common = {
        "decode_responses": False,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": connect_timeout_s,
        "health_check_interval": 30,
    }
    if cluster:
        return RedisCluster.from_url(plain, retry=_retry(), **common)
    return redis.Redis.from_url(plain, retry=_retry(), **common)


def connect_or_start(
    url: str | None, data_dir: Path | str
) -> tuple[RedisClient, EmbeddedRedis | None]:
    """Connect to `url` / $REDIS_URL / the embedded server already running on `data_dir`, or
    start the embedded redis-server with its data in `data_dir`.

    The caller owns the returned server and stops it (`server.stop()`) on shutdown.
    """
    url = url or os.environ.get(ENV_URL) or EmbeddedRedis.running_url(data_dir)
    if url:
        return connect(url), None
    server = EmbeddedRedis(data_dir).start()
    return connect(server.url), server


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)
