"""Per-app pseudonymization keys, in Redis apart from the config: rotatable, never logged.

One hash per app (`br:{app}:pseudonym_keys`): field `current` is the version in use, field
`k<version>` that version's 32 random bytes. Old versions are kept so that erasure can
still find records pseudonymized under them. The config, the logs, the API's answers and
the audit trail carry key versions only, never a key.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..eventlog.keys import AppKeys, check_app_name
from .pseudonymize import Pseudonymizer


def _key(app: str) -> str:
    return f"{AppKeys(check_app_name(app)).base}:pseudonym_keys"


class PseudonymKeys:
    """Read, create and rotate an app's pseudonymization keys."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def current(self, app: str) -> Pseudonymizer:
        """The key in use; created (version 1) on first use, by whichever process comes first."""
        key = _key(app)
        self.client.hsetnx(key, "k1", secrets.token_bytes(32))
        self.client.hsetnx(key, "current", 1)
        version = int(self.client.hget(key, "current"))
        return Pseudonymizer(app, bytes(self.client.hget(key, f"k{version}")), version)

    def all(self, app: str) -> list[Pseudonymizer]:
        """Every kept version, newest first (erasure hashes a subject id with each)."""
        data = self.client.hgetall(_key(app))
        out = [
            Pseudonymizer(app, bytes(v), int(k[1:]))
            for k, v in ((k.decode() if isinstance(k, bytes) else k, v) for k, v in data.items())
            if k.startswith("k")
        ]
        return sorted(out, key=lambda p: -p.version)

    def rotate(self, app: str) -> int:
        """A new key becomes current; returns its version. Replicas pick it up within a refresh."""
        self.current(app)
        key = _key(app)
        version = int(self.client.hincrby(key, "next", 1)) + 1
        while not self.client.hsetnx(key, f"k{version}", secrets.token_bytes(32)):
            version = int(self.client.hincrby(key, "next", 1)) + 1
        self.client.hset(key, "current", version)
        return version

    def version(self, app: str) -> int:
        return int(self.client.hget(_key(app), "current") or 0)
