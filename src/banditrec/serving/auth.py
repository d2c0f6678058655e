"""API keys: per app, with scopes, stored hashed, compared in constant time.

A key reads `brk_<id>_<secret>`: the id finds the stored record, the secret is checked
against its hash. Secrets are 256 random bits, so a salted SHA-256 is enough (there is
no dictionary to try); a slow password hash (scrypt, argon2) would add milliseconds to
every request and protect nothing more. Keys are never logged: only their id is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .errors import ApiError

Scope = Literal["decide", "reward", "admin"]
SCOPES: tuple[Scope, ...] = ("decide", "reward", "admin")
ALL_APPS = "*"
KEY_PREFIX = "brk"
_HASH_SCHEME = "sha256"


class ApiKeyRecord(BaseModel):
    """What is stored about a key: never the key itself."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[0-9a-f]{12}$")
    hash: str = Field(pattern=r"^sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$")
    apps: list[str] = Field(min_length=1, description="App names, or '*' for every app.")
    scopes: list[Scope] = Field(min_length=1, description="'admin' implies every scope.")
    created_at: str | None = None
    note: str | None = None

    def allows_app(self, app: str) -> bool:
        return ALL_APPS in self.apps or app in self.apps

    def allows_scope(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode()).hexdigest()


def create_key(
    apps: Iterable[str], scopes: Iterable[Scope], note: str | None = None
) -> tuple[str, ApiKeyRecord]:
    """A new key (shown once) and the record to store."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = ApiKeyRecord(
        id=key_id,
        hash=f"{_HASH_SCHEME}${salt.hex()}${_digest(salt, secret)}",
        apps=sorted(set(apps)),
        scopes=sorted(set(scopes)),  # type: ignore[arg-type]
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        note=note,
    )
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def record_for_key(
    key: str, apps: Iterable[str], scopes: Iterable[Scope], note: str | None = None
) -> ApiKeyRecord:
    """A fresh record (new salt) for a key made earlier, e.g. a development key kept on disk."""
    prefix, key_id, secret = key.split("_", 2)
    if prefix != KEY_PREFIX:
        raise ValueError("a key reads brk_<id>_<secret>")
    salt = secrets.token_bytes(16)
    return ApiKeyRecord(
        id=key_id,
        hash=f"{_HASH_SCHEME}${salt.hex()}${_digest(salt, secret)}",
        apps=sorted(set(apps)),
        scopes=sorted(set(scopes)),  # type: ignore[arg-type]
        note=note,
    )


def _verify(record: ApiKeyRecord, secret: str) -> bool:
    _, salt_hex, digest = record.hash.split("$")
    return hmac.compare_digest(_digest(bytes.fromhex(salt_hex), secret), digest)


# Checked against when the key id is unknown, so that case costs the same as a wrong secret.
_DECOY = ApiKeyRecord(
    id="0" * 12, hash=f"sha256${'0' * 32}${'0' * 64}", apps=["-"], scopes=["decide"]
)


class KeyRing:
    """The keys one replica accepts. With no keys at all, it runs open (see `open`)."""

    def __init__(self, records: Iterable[ApiKeyRecord] = (), *, open_access: bool = False) -> None:
        self._by_id = {r.id: r for r in records}
        self.open = open_access

    def __len__(self) -> int:
        return len(self._by_id)

    def authenticate(self, credential: str | None) -> ApiKeyRecord | None:
        """The record of a valid key; raises 401 otherwise. None when running open."""
        if self.open:
            return None
        if not credential:
            raise ApiError(
                401,
                "missing API key",
                ["send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"],
            )
        parts = credential.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise ApiError(401, "invalid API key", ["a key reads brk_<id>_<secret>"])
        record = self._by_id.get(parts[1])
        if not _verify(record or _DECOY, parts[2]) or record is None:
            raise ApiError(401, "invalid API key", ["unknown key or wrong secret"])
        return record

    def authorize(self, credential: str | None, app: str, scope: Scope) -> ApiKeyRecord | None:
        """Authenticate, then check the app and the scope (403 when they are not covered)."""
        record = self.authenticate(credential)
        if record is None:
            return None
        if not record.allows_app(app):
            raise ApiError(403, "forbidden", [f"key {record.id} is not valid for app {app!r}"])
        if not record.allows_scope(scope):
            raise ApiError(
                403, "forbidden", [f"key {record.id} lacks the {scope!r} scope needed here"]
            )
        return record

    def visible_apps(self, record: ApiKeyRecord | None, apps: Iterable[str]) -> list[str]:
        return [a for a in apps if record is None or record.allows_app(a)]


def credential_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request brings: in `X-API-Key`, or as `Authorization: Bearer <key>`.

    Both headers at once are accepted only when they carry the same key: a request is
    never let in on one header while the other holds something else."""
    bearer = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(
                401, "invalid API key", ["the 'Authorization' header must read 'Bearer <key>'"]
            )
        bearer = value.strip()
    key = x_api_key.strip() if x_api_key else None
    if bearer is not None and key is not None and not hmac.compare_digest(bearer, key):
        raise ApiError(
            400,
            "ambiguous API key",
            ["'Authorization' and 'X-API-Key' carry different keys; send the key in one header"],
        )
    return key or bearer


# --- keys files ------------------------------------------------------------------------


def read_keys_file(path: Path) -> list[ApiKeyRecord]:
    """The records of a keys file (`api_keys: [...]`); an absent file holds none."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    return [ApiKeyRecord.model_validate(r) for r in data.get("api_keys", [])]


def append_key(path: Path, record: ApiKeyRecord) -> None:
    write_keys_file(path, [*read_keys_file(path), record])


def write_keys_file(path: Path, records: list[ApiKeyRecord]) -> None:
    """Written whole then renamed, so a replica re-reading it never sees half a file."""
    body = {"api_keys": [r.model_dump(exclude_none=True) for r in records]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(yaml.safe_dump(body, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
