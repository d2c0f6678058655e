"""Context + actions → learner input, built once per decision and shared by every policy.

The VW input is VW's own JSON layout (`{namespace: {feature: value}, "_multi": [...]}`),
which is also the `c` of the DSJson log record: the bytes a policy decided on are the
bytes that are logged and later learned from, so VW's parser does all namespacing,
escaping and hashing for VW. The numpy policies use `hashed()`, a stable hashing of the
same structure into a fixed dimension.

What VW's JSON parser takes safely (found by feeding it arbitrary unicode in a subprocess,
tests/test_vw_alphabet.py, and by reading its parser: a namespace's first byte is its index,
a signed `char`, so a first byte ≥ 0x80 indexes out of bounds and crashes VW):

- a namespace must start with an ASCII character. One that does not is escaped: it is
  used, logged and learned as `~` + its name (`"用户"` → `"~用户"`), so it still gets
  weights of its own and interactions can name it by `~`. A namespace sent as `~` + a
  non-ASCII character is refused (it would collide with an escaped one);
- feature names, string values and action ids may hold any unicode but NUL, at which VW
  cuts a string (two names differing after a NUL would be one feature): refused;
- names starting with `_` are VW's own keys: refused (`schema.py`).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

ACTION_ID_NAMESPACE = "id"
ESCAPE = "~"  # the first character of a namespace whose own first character is not ASCII
_ASCII_END = "\x80"
_JSON_NUL = b"\\u0000"  # how orjson writes a NUL character
_CROSS_PRIME = 0x6A09E667  # < 2**31


# A namespace's identity (its name, its feature names and its string values, which are
# part of the feature) gets an id and its feature hashes, once: names repeat from request to
# request. A request's layout (dim, then its namespaces' ids, with `_BIAS` where an action
# starts) gets a "plan", once: the bin of every weight. Ids are never reused, so a cached
# plan always means what it meant when it was built.
_ENTRY_IDS: dict[tuple, int] = {}
_ENTRY_HASHES: dict[int, list[int]] = {}
_NEXT_ID = itertools.count()
_CACHE_MAX = 1 << 18
_BIAS = -1
_PLANS: dict[tuple[int, ...], np.ndarray] = {}
_PLAN_BUDGET = 1 << 22  # int64 bins cached in all (32 MB) ...
_PLANS_MAX = 1 << 12  # ... and layouts
_plan_size = 0


def _name_hashes(namespace: str, names: tuple[str, ...], values: tuple | None) -> list[int]:
    """Stable (process-independent) hashes of a namespace's features. A string value is
    part of its feature's identity; a number (None in `values`) is not. An escaped namespace
    hashes as its name did before escaping, so vectors do not depend on when it was escaped."""
    if namespace[:1] == ESCAPE and namespace[1:2] >= _ASCII_END:
        namespace = namespace[1:]
    if values is None:
        texts = [f"{namespace}^{n}" for n in names]
    else:
        texts = [
            f"{namespace}^{n}" if v is None else f"{namespace}^{n}={v}"
            for n, v in zip(names, values, strict=True)
        ]
    return [zlib.crc32(t.encode()) for t in texts]


def _new_entry(key: tuple) -> int:
    entry = next(_NEXT_ID)
    _ENTRY_HASHES[entry] = _name_hashes(key[0], key[1], key[2] if len(key) > 2 else None)
    _ENTRY_IDS[key] = entry
    return entry


def _collect(
    groups: Iterable[Mapping[str, Mapping[str, Any]]], layout: list[int], val: list[Any], bias: bool
) -> None:
    """Append each namespace's id to `layout` and its values to `val`, group by group (with
    `bias`, each group is an action and starts with `_BIAS`). A string value makes its own
    feature of value 1; booleans count as 1 / 0 (in the float conversion)."""
    ids = _ENTRY_IDS
    fsum = math.fsum
    for features in groups:
        if bias:
            layout.append(_BIAS)
        for ns, feats in features.items():
            if ns.startswith("_") or not feats:
                continue
            values = feats.values()
            try:  # fsum floats every value, so it fails on a `str`: cheaper than looking for one
                fsum(values)
                string = False
            except Exception:
                string = str in map(type, values)
            if string:
                raw = tuple(values)
                strings = tuple(v if type(v) is str else None for v in raw)
                key: tuple = (ns, tuple(feats), strings)  # numbers stay out of the key
                val.extend(1.0 if type(v) is str else v for v in raw)
            else:
                key = (ns, tuple(feats))
                val.extend(values)
            entry = ids.get(key)
            layout.append(_new_entry(key) if entry is None else entry)


def _plan(layout: tuple[int, ...], k: int) -> np.ndarray:
    """The bin of every weight of `hashed`, laid out as its (1 + n_context, k + n_action_values)
    weight matrix, raveled. Row 0 is the k biases, then every action's own features; each
    other row crosses one context feature with those. Crosses with a bias are not features:
    they land in a spare bin past the k × dim matrix.
    """
    global _plan_size
    dim = layout[0]
    c_hashes = [0]  # row 0: (0 * prime + h) % dim is h's own bin
    a_hashes = [0] * k  # ... and the biases take bin 0 of their row
    counts: list[int] = []
    hashes = c_hashes
    for entry in layout[1:]:
        if entry == _BIAS:
            hashes = a_hashes
            counts.append(0)
        else:
            h = _ENTRY_HASHES[entry]
            hashes.extend(h)
            if counts:
                counts[-1] += len(h)
    row = np.arange(k, dtype=np.int64) * dim
    # (c * prime + a) % dim, from residues: c * prime < 2**63 (crc32 < 2**32, prime < 2**31)
    plan = (np.array(c_hashes, dtype=np.int64) * _CROSS_PRIME % dim)[:, None] + (
        np.array(a_hashes, dtype=np.int64) % dim
    )
    # now 0 <= plan < 2 dim: the last % dim is min(p, p - dim) in uint64 (p - dim wraps if p < dim)
    wrapped = plan.view(np.uint64)
    np.minimum(wrapped, wrapped - np.uint64(dim), out=wrapped)
    plan += np.concatenate((row, np.repeat(row, counts)))
    plan[1:, :k] = k * dim
    plan = plan.ravel()
    if _plan_size + plan.size > _PLAN_BUDGET or len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
        _plan_size = 0
    _PLANS[layout] = plan
    _plan_size += plan.size
    return plan


def vw_namespaces(features: Mapping[str, Any]) -> dict[str, Any]:
    """`features` with every namespace VW can index: one whose first character is not ASCII
    becomes `ESCAPE` + its name (deterministic, so logs and learning agree).

    >>> vw_namespaces({"user": {"a": 1}, "用户": {"b": 1}})
    {'user': {'a': 1}, '~用户': {'b': 1}}
    """
    # the largest name starts with a non-ASCII character iff any does (code point order)
    if not features or max(features) < _ASCII_END:
        return dict(features)
    return {(ns if ns[:1] < _ASCII_END else ESCAPE + ns): f for ns, f in features.items()}


def unsafe_namespace(name: str) -> bool:
    """A namespace VW cannot index (first byte ≥ 0x80): what `vw_namespaces` escapes."""
    return name[:1] >= _ASCII_END


def check_no_nul(c: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first string of a VW input (a DSJson `c`) with a NUL."""
    problem = vw_input_problem(c, escaped=True)
    if problem is not None:
        raise ValueError(problem)


def vw_input_problem(c: Mapping[str, Any], *, escaped: bool = False) -> str | None:
    """Why VW's parser cannot take the DSJson `c` as it is (None when it can): a namespace
    that starts with a non-ASCII character (unless `escaped` says they were), a NUL."""
    groups = [c, *c.get("_multi", ())] if isinstance(c, Mapping) else [c]
    for group in groups:
        if not isinstance(group, Mapping):
            return f"not a namespace object: {_short(group)}"
        for ns, feats in group.items():
            if ns == "_multi":
                continue
            if not escaped and unsafe_namespace(ns):
                return f"namespace {_short(ns)} starts with a non-ASCII character"
            if "\x00" in ns:
                return f"namespace {_short(ns)} contains NUL (\\u0000); VW cuts strings there"
            for name, value in feats.items() if isinstance(feats, Mapping) else ():
                if "\x00" in name or (isinstance(value, str) and "\x00" in value):
                    return (
                        f"feature {ns}.{_short(name)} (its name, value or action id) contains "
                        "NUL (\\u0000), which VW cuts strings at; remove it"
                    )
    return None


def vw_line_problem(line: bytes) -> str | None:
    """Why VW's DSJson parser cannot take a logged line as it is (None when it can): the
    check before the learner hands VW the bytes. An ASCII line without an escaped NUL is
    fine as it is (one pass over the bytes); any other is parsed and looked at."""
    if line.isascii() and (b"\\" not in line or _JSON_NUL not in line):
        return None  # (the one-byte search first: the 6-byte one costs microseconds)
    try:
        c = orjson.loads(line).get("c", {})
    except (orjson.JSONDecodeError, AttributeError) as exc:
        return f"not a DSJson record: {exc}"
    return vw_input_problem(c)


def _short(text: object) -> str:
    out = repr(text)
    return out if len(out) <= 80 else out[:77] + "..."


@dataclass(slots=True)
class FeatureSet:
    """One decision's candidates in a shared context; actions keep their offered order."""

    context: dict[str, Any]
    actions: list[dict[str, Any]]
    action_ids: list[str]
    _json: bytes | None = field(default=None, repr=False)
    _hashed: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _escaped: bool = field(default=False, repr=False)

    @classmethod
    def build(
        cls,
        context: Mapping[str, Mapping[str, Any]],
        actions: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]],
        *,
        action_id_feature: bool = True,
    ) -> FeatureSet:
        """From a context and (action id, namespaced features) pairs. Namespaces are
        escaped (`vw_namespaces`) before anything reads them: VW, the log, `hashed`."""
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

    def _escape(self) -> None:
        if self._escaped:
            return
        self._escaped = True
        # the largest namespace starts with a non-ASCII character iff any does: C-level maxes
        top = max(self.context, default="")
        top = max(top, max(map(max, filter(None, self.actions)), default=""))
        if top >= _ASCII_END:
            self.context = vw_namespaces(self.context)
            self.actions = [vw_namespaces(a) for a in self.actions]

    def dsjson_c(self) -> dict[str, Any]:
        self._escape()
        return {**self.context, "_multi": self.actions}

    def vw_json(self) -> bytes:
        """`dsjson_c()` as JSON (UTF-8): what VW parses, and the log record's "c", serialized once.

        An all-ASCII JSON has no namespace to escape and no NUL: one pass over the bytes
        tells, so the common request pays nothing more (a NUL is written as an escape)."""
        if self._json is None:
            out = orjson.dumps({**self.context, "_multi": self.actions})
            # (a backslash first: one memchr, where the 6-byte search took microseconds)
            if not out.isascii() or (b"\\" in out and _JSON_NUL in out):
                if not self._escaped:
                    out = orjson.dumps(self.dsjson_c())
                if _JSON_NUL in out:  # then look closely (a literal "\\u0000" text is fine)
                    check_no_nul(self.dsjson_c())
            self._json = out
        return self._json

    def hashed(self, dim: int) -> np.ndarray:
        """(n_actions, dim) matrix: action features, and context × action crosses, plus a bias.

        Context-only features cannot change which action is best under a shared linear
        model, so they enter only through their crosses with each action's features.
        """
        cached = self._hashed.get(dim)
        if cached is not None:
            return cached
        if len(_ENTRY_IDS) >= _CACHE_MAX:  # between requests: a plan needs its ids' hashes
            _ENTRY_IDS.clear()
            _ENTRY_HASHES.clear()
        k = len(self.actions)
        layout = [dim]
        cv: list[Any] = [1.0]  # the 1 keeps row 0 of the weights each action's own values
        _collect((self.context,), layout, cv, False)
        av: list[Any] = [1.0] * k  # the biases
        _collect(self.actions, layout, av, True)
        key = tuple(layout)
        plan = _PLANS.get(key)
        if plan is None:
            try:
                plan = _plan(key, k)
            except KeyError:  # another thread emptied the id cache since `_collect`: again
                return self.hashed(dim)
        # Every bin sums its weights in the order it always did (bias, the action's features,
        # the crosses context feature by context feature), so the sums are bit-identical.
        weights = np.array(cv, dtype=np.float64)[:, None] * np.array(av, dtype=np.float64)
        flat = np.bincount(plan, weights=weights.ravel(), minlength=k * dim + 1)
        out = flat[: k * dim].reshape(k, dim)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
        np.divide(out, norms, out=out, where=norms > 0)  # x / 1.0 is x: the rest stay as they are
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
