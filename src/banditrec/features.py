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
_CROSS_PRIME = np.uint64(0x9E3779B1)


def _name_hash(namespace: str, name: str, value: Any) -> tuple[int, float]:
    """Stable (process-independent) hash of one feature and its numeric value."""
    if isinstance(value, str):
        return zlib.crc32(f"{namespace}^{name}={value}".encode()), 1.0
    if value is True:
        return zlib.crc32(f"{namespace}^{name}".encode()), 1.0
    if value is False:
        return 0, 0.0
    return zlib.crc32(f"{namespace}^{name}".encode()), float(value)


def _hash_namespaces(features: Mapping[str, Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    idx: list[int] = []
    val: list[float] = []
    for ns, feats in features.items():
        if ns.startswith("_"):
            continue
        for name, value in feats.items():
            h, v = _name_hash(ns, name, value)
            if v != 0.0:
                idx.append(h)
                val.append(v)
    return np.asarray(idx, dtype=np.uint64), np.asarray(val, dtype=np.float64)


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
        multi = []
        for action_id, feats in actions:
            a = dict(feats)
            if action_id_feature and ACTION_ID_NAMESPACE not in a:
                a[ACTION_ID_NAMESPACE] = {action_id: 1}
            multi.append(a)
        return cls(dict(context), multi, [a for a, _ in actions])

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
        d = np.uint64(dim)
        c_idx, c_val = _hash_namespaces(self.context)
        out = np.zeros((len(self.actions), dim), dtype=np.float64)
        for row, feats in enumerate(self.actions):
            a_idx, a_val = _hash_namespaces(feats)
            np.add.at(out[row], (a_idx % d).astype(np.intp), a_val)
            if c_idx.size and a_idx.size:
                cross = (c_idx[:, None] * _CROSS_PRIME + a_idx[None, :]) % d
                np.add.at(out[row], cross.ravel().astype(np.intp), np.outer(c_val, a_val).ravel())
            out[row, 0] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
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
