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

from ..schema import DecisionRequest

PSEUDONYM_PATTERN = re.compile(r"^ps\d+\.[0-9a-f]{32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,24}$")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$")


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

    identifiers: tuple[tuple[str, str], ...]
    subject: tuple[str, str] | None
    contact_values: str
    pseudonymizer: Pseudonymizer | None

    @classmethod
    def from_config(cls, privacy: Any, pseudonymizer: Pseudonymizer | None) -> RequestPrivacy:
        ids = tuple(_split(f) for f in privacy.identifiers)
        subject = _split(privacy.subject) if privacy.subject else (ids[0] if ids else None)
        return cls(ids, subject, privacy.contact_values, pseudonymizer)

    @property
    def active(self) -> bool:
        return bool(self.identifiers) or self.contact_values != "allow"

    def _hash(self, value: Any, where: str) -> str:
        if self.pseudonymizer is None:
            raise PrivacyError(
                f"{where}: this app pseudonymizes identifiers but has no key yet; "
                "the server creates one on start (in-process: DecisionEngine.set_pseudonymizer)"
            )
        return self.pseudonymizer.pseudonym(value)

    def _namespaces(
        self, features: Mapping[str, Mapping[str, Any]], where: str
    ) -> tuple[dict[str, dict[str, Any]], bool]:
        out: dict[str, dict[str, Any]] = {}
        changed = False
        for ns, feats in features.items():
            new: dict[str, Any] = {}
            for name, value in feats.items():
                here = f"{where}.{ns}.{name}"
                if (ns, name) in self.identifiers:
                    value, changed = self._hash(value, here), True
                elif self.contact_values != "allow":
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
            out[ns] = new
        return out, changed

    def _actions(self, actions: list[Any], where: str) -> tuple[list[Any], bool]:
        out, changed = [], False
        for i, a in enumerate(actions):
            feats, a_changed = self._namespaces(a.features, f"{where}[{i}].features")
            out.append(a.model_copy(update={"features": feats}) if a_changed else a)
            changed |= a_changed
        return out, changed

    def apply(self, request: DecisionRequest) -> tuple[DecisionRequest, str | None]:
        subject = None
        if self.subject is not None:
            ns, name = self.subject
            raw = request.context.get(ns, {}).get(name)
            if raw is not None:
                subject = self._hash(raw, f"context.{ns}.{name}")
        context, changed = self._namespaces(request.context, "context")
        update: dict[str, Any] = {"context": context} if changed else {}
        if request.actions is not None:
            actions, a_changed = self._actions(request.actions, "actions")
            if a_changed:
                update["actions"] = actions
        elif request.slots is not None:
            slots, any_changed = [], False
            for i, s in enumerate(request.slots):
                actions, a_changed = self._actions(s.actions, f"slots[{i}].actions")
                slots.append(s.model_copy(update={"actions": actions}) if a_changed else s)
                any_changed |= a_changed
            if any_changed:
                update["slots"] = slots
        if update:
            request = request.model_copy(update=update)
        return request, subject


def _refused(where: str, what: str, kind: str) -> PrivacyError:
    return PrivacyError(
        f"{where}: the {what} looks like {kind}; this app refuses contact details "
        "(declare the field in privacy.identifiers, or set privacy.contact_values to 'hash')"
    )
