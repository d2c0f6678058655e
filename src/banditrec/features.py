"""Context + actions → learner input, built once per decision and shared by every policy.

The VW input is VW's own JSON layout (`{namespace: {feature: value}, "_multi": [...]}`),
which is also the `c` of the DSJson log record: the bytes a policy decided on are the
bytes that are logged and later learned from, so VW's parser does all namespacing,
escaping and hashing for VW. The numpy policies use `hashed()`, a stable hashing of the
same structure into a fixed dimension.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

ACTION_ID_NAMESPACE = "id"
_CROSS_PRIME = 0x6A09E667  # < 2**31


_NAME_HASHES: dict[tuple, list[int]] = {}
_CACHE_MAX = 1 << 18


def _name_hashes(namespace: str, names: tuple[str, ...], values: tuple | None) -> list[int]:
    """Stable (process-independent) hashes of a namespace's features, memoized: feature
    names repeat from request to request. String values are part of the identity."""
    key = (namespace, names, values)
    h = _NAME_HASHES.get(key)
    if h is None:
        if values is None:
            texts = [f"{namespace}^{n}" for n in names]
        else:
            texts = [
                f"{namespace}^{n}" if v is None else f"{namespace}^{n}={v}"
                for n, v in zip(names, values, strict=True)
            ]
        h = [zlib.crc32(t.encode()) for t in texts]
        if len(_NAME_HASHES) >= _CACHE_MAX:
            _NAME_HASHES.clear()
        _NAME_HASHES[key] = h
    return h


def _hash_into(features: Mapping[str, Mapping[str, Any]], idx: list[int], val: list[Any]) -> int:
    """Append (hash, value) of every feature; returns how many. A string value makes its
    own feature of value 1; booleans count as 1 / 0. Plain lists keep this loop in C."""
    n = 0
    for ns, feats in features.items():
        if ns.startswith("_") or not feats:
            continue
        raw = tuple(feats.values())
        if str in map(type, raw):
            strings = tuple(
                v if type(v) is str else None for v in raw
            )  # numbers stay out of the key
            idx.extend(_name_hashes(ns, tuple(feats), strings))
            val.extend(1.0 if type(v) is str else v for v in raw)
        else:
            idx.extend(_name_hashes(ns, tuple(feats), None))
            val.extend(raw)
        n += len(raw)
    return n


@dataclass(slots=True)
class FeatureSet:
    """One decision's candidates in a shared context; actions keep their offered order."""

    context: dict[str, Any]
    actions: list[dict[str, Any]]
    action_ids: list[str]
    _json: str | None = field(default=None, repr=False)
    _hashed: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        context: Mapping[str, Mapping[str, Any]],
        actions: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]],
        *,
        action_id_feature: bool = True,
    ) -> FeatureSet:
        """From a context and (action id, namespaced features) pairs."""
        multi = [dict(feats) for _, feats in actions]
        ids = [action_id for action_id, _ in actions]
        if action_id_feature:
            for a, action_id in zip(multi, ids, strict=True):
                if ACTION_ID_NAMESPACE not in a:
                    a[ACTION_ID_NAMESPACE] = {action_id: 1}
        return cls(dict(context), multi, ids)

    @classmethod
    def from_dsjson_c(cls, c: Mapping[str, Any], action_ids: Sequence[str]) -> FeatureSet:
        context = {k: v for k, v in c.items() if k != "_multi"}
        return cls(context, list(c.get("_multi", [])), list(action_ids))

    def __len__(self) -> int:
        return len(self.actions)

    def dsjson_c(self) -> dict[str, Any]:
        return {**self.context, "_multi": self.actions}

    def vw_json(self) -> str:
        if self._json is None:
            self._json = orjson.dumps(self.dsjson_c()).decode()
        return self._json

    def hashed(self, dim: int) -> np.ndarray:
        """(n_actions, dim) matrix: action features, and context × action crosses, plus a bias.

        Context-only features cannot change which action is best under a shared linear
        model, so they enter only through their crosses with each action's features.
        """
        cached = self._hashed.get(dim)
        if cached is not None:
            return cached
        k = len(self.actions)
        ci: list[int] = []
        cv: list[Any] = []
        _hash_into(self.context, ci, cv)
        ai: list[int] = []
        av: list[Any] = []
        counts = [_hash_into(feats, ai, av) for feats in self.actions]
        c_idx, c_val = np.array(ci, dtype=np.int64), np.array(cv, dtype=np.float64)
        a_idx, a_val = np.array(ai, dtype=np.int64), np.array(av, dtype=np.float64)
        rows = np.repeat(np.arange(k) * dim, counts)
        # crc32 < 2**32 and the prime < 2**31, so the cross index cannot overflow int64
        cross = (c_idx[:, None] * _CROSS_PRIME + a_idx) % dim + rows
        flat = np.bincount(
            np.concatenate([np.arange(k) * dim, a_idx % dim + rows, cross.ravel()]),
            weights=np.concatenate([np.ones(k), a_val, np.outer(c_val, a_val).ravel()]),
            minlength=k * dim,
        )
        out = flat.reshape(k, dim)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
        out /= np.where(norms > 0, norms, 1.0)
        self._hashed[dim] = out
        return out


@dataclass(slots=True)
class Interaction:
    """What learning needs from one decision: its inputs, the choice, its propensity, the reward."""

    features: FeatureSet
    chosen: int
    probability: float
    reward: float
    slot: str | None = None
