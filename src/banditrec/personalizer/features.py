"""Personalizer's features (lists of JSON objects) → banditrec's namespaced features.

Personalizer merges the objects of a feature list into one VW JSON object: a key whose value
is an object is a namespace, any other key a feature of VW's default namespace. banditrec
keeps every feature in a named namespace, so:

- `{"user": {"tier": "gold", "visits": 3}}` → namespace `user`, features `tier`, `visits`;
- a top-level value (`{"timeOfDay": "Morning"}`) → namespace `default` (`DEFAULT_NAMESPACE`);
- deeper objects and lists are flattened into dotted names (`{"geo": {"lat": 47}}` inside
  `user` → `geo.lat`; `[0.1, 0.2]` under `emb` → `emb.0`, `emb.1`);
- nulls, and keys starting with `_` (VW's reserved names), are left out.

The same function reads the `c` of Personalizer's exported logs (`logs.py`), so a model
warm-started from those logs sees the features of live rank requests exactly as it learned them.

>>> namespaced([{"timeOfDay": "Morning"}, {"user": {"tier": "gold", "geo": {"lat": 47.6}}}])
{'default': {'timeOfDay': 'Morning'}, 'user': {'tier': 'gold', 'geo.lat': 47.6}}
>>> slot_name("Main Article")
'Main_Article'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_NAMESPACE = "default"
_SLOT_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(key, str) and key and not key.startswith("_"):
                _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, list | tuple):
        for i, inner in enumerate(value):
            _flatten(f"{prefix}.{i}" if prefix else str(i), inner, out)
    else:
        out[prefix] = value


def namespaced(objects: Iterable[Any] | None, *, flat: bool = False) -> dict[str, dict[str, Any]]:
    """A Personalizer feature list (or one merged object, as its logs hold) → namespaces.

    Values keep their JSON types (string, number, boolean); the request validation that
    follows refuses what VW could not use (non-finite numbers) with the field's path.
    `flat=True` takes each namespace's object as it is, without looking inside: for callers
    that validate the result and fall back to the full conversion when it does not hold
    (nested objects, lists, nulls, `_` names), which costs a feature-by-feature pass.
    """
    out: dict[str, dict[str, Any]] = {}
    for obj in objects or ():
        if not isinstance(obj, Mapping):
            raise ValueError(f"a feature list holds JSON objects; got {type(obj).__name__}")
        for key, value in obj.items():
            if not isinstance(key, str) or not key or key[0] == "_" or value is None:
                continue
            if isinstance(value, Mapping):
                ns = out.get(key)
                if flat:
                    out[key] = value if ns is None else {**ns, **value}  # type: ignore[assignment]
                else:
                    _flatten("", value, out.setdefault(key, {}) if ns is None else ns)
            else:
                _flatten(key, value, out.setdefault(DEFAULT_NAMESPACE, {}))
    return {ns: feats for ns, feats in out.items() if feats}


def slot_name(slot_id: str) -> str:
    """The banditrec slot name of a Personalizer slot id: characters outside
    `[A-Za-z0-9_.-]` become `_` (apps.yaml names the slots this way)."""
    return _SLOT_CHARS.sub("_", slot_id)[:64]
