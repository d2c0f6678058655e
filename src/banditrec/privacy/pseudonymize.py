"""Identifiers replaced by a keyed hash before anything sees them; contact details refused.

An app declares its identifier fields (`privacy.identifiers: ["user.id", "user.email"]`,
each `namespace.feature`, matched in the context and in every action's features). Their
values are replaced, before the policy, the log record, the spool or an export see the
request, by `ps<key version>.<HMAC-SHA256(key, app ‖ value), 32 hex>`: stable for one key,
so the policy still learns per user, and not reversible without the key. Keys are per app,
random (32 bytes), kept in Redis apart from the config (`privacy/keys.py`) and rotatable;
after a rotation new decisions carry the new pseudonym, and erasure looks for all of them.

Any other string value (or feature name) that looks like an e-mail address or a phone number
is, per `privacy.contact_values`: refused (`refuse`, the default: a 422 naming the field),
hashed like an identifier (`hash`), or let through (`allow`). A phone number is a string
of 7 to 15 digits with separators (space . - ( )) and either a leading '+' or a separator;
dates (2024-01-31) are not phone numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..decision.schema import DecisionRequest

PSEUDONYM_PATTERN = re.compile(r"^ps\d+\.[0-9a-f]{32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,24}$")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$")
_PHONE_START = frozenset(b"+(0123456789")


def suspect(features_json: bytes) -> bool:
    """Whether a request's features (as the JSON VW parses, serialized anyway) might hold a
    contact detail: an '@' anywhere, or a string value starting like a phone number. Two
    byte searches in C for a typical request; only then is every feature looked at.
    (Feature names are checked for '@' here, for phone numbers only in that full scan.)"""
    if b"@" in features_json:
        return True
    i = features_json.find(b'":"')
    while i >= 0:
        if features_json[i + 3] in _PHONE_START:
            return True
        i = features_json.find(b'":"', i + 3)
    return False


def looks_like_contact(text: str) -> str | None:
    """'an e-mail address', 'a phone number' or None."""
    if "@" in text:
        return "an e-mail address" if _EMAIL.match(text) else None
    if len(text) < 7 or text[0] not in "+(0123456789" or not _PHONE.match(text):
        return None
    digits = sum(c.isdigit() for c in text)
    separated = text[0] == "+" or any(c in " .-()" for c in text)
    if 7 <= digits <= 15 and separated and not _DATE.match(text):
        return "a phone number"
    return None


class PrivacyError(ValueError):
    """A request the app's privacy settings refuse; the message names the field."""


@dataclass(frozen=True, slots=True)
class Pseudonymizer:
    """One app's keyed hash: `pseudonym(value)` under its current key (`version`)."""

    app: str
    key: bytes
    version: int = 1

    def pseudonym(self, value: Any) -> str:
        digest = hmac.new(self.key, f"{self.app}\x00{value}".encode(), hashlib.sha256)
        return f"ps{self.version}.{digest.hexdigest()[:32]}"


def _split(field: str) -> tuple[str, str]:
    ns, _, name = field.partition(".")
    return ns, name


@dataclass(frozen=True, slots=True)
class RequestPrivacy:
    """An app's privacy settings applied to requests: `apply` returns the request to decide on
    and the subject's pseudonym (None when the app names no subject or the request has none)."""

    identifiers: frozenset[tuple[str, str]]
    subject: tuple[str, str] | None
    contact_values: str
    pseudonymizer: Pseudonymizer | None
    id_namespaces: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, privacy: Any, pseudonymizer: Pseudonymizer | None) -> RequestPrivacy:
        ids = [_split(f) for f in privacy.identifiers]
        subject = _split(privacy.subject) if privacy.subject else (ids[0] if ids else None)
        namespaces = frozenset(ns for ns, _ in ids)
        return cls(frozenset(ids), subject, privacy.contact_values, pseudonymizer, namespaces)

    def _hash(self, value: Any, where: str) -> str:
        if self.pseudonymizer is None:
            raise PrivacyError(
                f"{where}: this app pseudonymizes identifiers but has no key yet; "
                "the server creates one on start (in-process: DecisionEngine.set_pseudonymizer)"
            )
        return self.pseudonymizer.pseudonym(value)

    def _namespace(
        self, ns: str, feats: Mapping[str, Any], where: str, scan: bool
    ) -> dict[str, Any] | None:
        """The namespace with its identifiers (and, with `scan`, contact details) replaced;
        None when nothing in it changes."""
        new: dict[str, Any] = {}
        changed = False
        for name, value in feats.items():
            here = f"{where}.{ns}.{name}"
            if (ns, name) in self.identifiers:
                value, changed = self._hash(value, here), True
            elif scan:
                kind = looks_like_contact(name)
                if kind is not None:
                    if self.contact_values == "refuse":
                        raise _refused(here, "feature name", kind)
                    name, changed = self._hash(name, here), True
                if type(value) is str and (kind := looks_like_contact(value)):
                    if self.contact_values == "refuse":
                        raise _refused(here, "value", kind)
                    value, changed = self._hash(value, here), True
            new[name] = value
        return new if changed else None

    def _features(
        self, features: dict[str, dict[str, Any]], where: str, scan: bool
    ) -> dict[str, dict[str, Any]] | None:
        out = None
        for ns, feats in features.items():
            if scan or ns in self.id_namespaces:
                new = self._namespace(ns, feats, where, scan)
                if new is not None:
                    out = dict(features) if out is None else out
                    out[ns] = new
        return out

    def _actions(self, actions: list[Any], where: str, scan: bool) -> list[Any] | None:
        out = None
        for i, a in enumerate(actions):
            feats = self._features(a.features, f"{where}[{i}].features", scan)
            if feats is not None:
                out = list(actions) if out is None else out
                out[i] = a.model_copy(update={"features": feats})
        return out

    def apply(
        self, request: DecisionRequest, *, scan: bool = False
    ) -> tuple[DecisionRequest, str | None]:
        """The request with its identifiers hashed and, with `scan`, every feature name and
        string value looked at for contact details (refused or hashed). Without `scan` only
        the identifiers' namespaces are visited; `suspect` says when a scan is needed."""
        subject = None
        if self.subject is not None:
            ns, name = self.subject
            raw = request.context.get(ns, {}).get(name)
            if raw is not None:
                subject = self._hash(raw, f"context.{ns}.{name}")
        if not scan and not self.id_namespaces:
            return request, subject
        update: dict[str, Any] = {}
        context = self._features(request.context, "context", scan)
        if context is not None:
            update["context"] = context
        if request.actions is not None:
            actions = self._actions(request.actions, "actions", scan)
            if actions is not None:
                update["actions"] = actions
        elif request.slots is not None:
            slots = list(request.slots)
            for i, s in enumerate(slots):
                actions = self._actions(s.actions, f"slots[{i}].actions", scan)
                if actions is not None:
                    slots[i] = s.model_copy(update={"actions": actions})
                    update["slots"] = slots
        if update:
            request = request.model_copy(update=update)
        return request, subject


def _refused(where: str, what: str, kind: str) -> PrivacyError:
    return PrivacyError(
        f"{where}: the {what} looks like {kind}; this app refuses contact details "
        "(declare the field in privacy.identifiers, or set privacy.contact_values to 'hash')"
    )
