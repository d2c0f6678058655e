"""Any labelled dataset as a contextual bandit: the context is an example's features, the
actions are the classes, and the reward is 1 for the right class, 0 otherwise.

This is the standard way to test a contextual-bandit learner on real data (and to check
it against Vowpal Wabbit's own tools): the value of every policy is known exactly. The
datasets scikit-learn ships with its package (digits, wine, iris, breast cancer) work
offline; any other `(X, y)` can be passed in.

The step path walks through the examples in a fresh random order each pass (epoch);
`sample_batch` draws examples with replacement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from .base import ActionSpec, BanditBatch, BanditEnv, Context

DATASETS = ("digits", "wine", "iris", "breast_cancer")
CONTEXT_NAMESPACE = "x"
ACTION_NAMESPACE = "label"


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(X, y, feature names, class names) of a dataset scikit-learn ships (no download)."""
    from sklearn import datasets

    loaders = {
        "digits": datasets.load_digits,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(loaders)} or pass X and y")
    data = loaders[name]()
    return data.data, data.target, list(data.feature_names), [str(c) for c in data.target_names]


def _clean(name: str) -> str:
    """A feature or action name that survives every format we write it to."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "f"


class SupervisedBanditEnv(BanditEnv):
    """`banditrec/Supervised-v0` (any dataset); `banditrec/Digits-v0`, `Wine-v0`, `Iris-v0`,
    `BreastCancer-v0` are the same env with the dataset preset."""

    def __init__(
        self,
        dataset: str | None = "digits",
        *,
        X: np.ndarray | None = None,
        y: Sequence[int] | np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        standardize: bool = True,
    ) -> None:
        super().__init__()
        if X is not None or y is not None:
            if X is None or y is None:
                raise ValueError("pass both X and y, or a dataset name")
            features = np.asarray(X, dtype=np.float64)
            labels = np.asarray(y)
            names = (
                list(feature_names)
                if feature_names is not None
                else [f"f{j}" for j in range(features.shape[1])]
            )
            classes = (
                list(class_names)
                if class_names is not None
                else [str(c) for c in np.unique(labels)]
            )
            self.dataset = "custom"
        else:
            if dataset is None:
                raise ValueError("pass a dataset name or X and y")
            features, labels, names, classes = load_dataset(dataset)
            self.dataset = dataset
        if features.ndim != 2 or len(features) != len(labels) or len(features) == 0:
            raise ValueError(
                f"X must be (n, d) with one label per row; got X {features.shape}, y {labels.shape}"
            )
        if (
            labels.min() < 0
            or labels.max() >= len(classes)
            or not np.issubdtype(labels.dtype, np.integer)
        ):
            raise ValueError(
                f"y must hold class indices in [0, {len(classes)}), one per class name"
            )
        if len(names) != features.shape[1]:
            raise ValueError(f"{len(names)} feature names for {features.shape[1]} features")
        if not np.isfinite(features).all():
            raise ValueError("X holds NaN or infinite values; impute or drop them first")
        if standardize:
            scale = features.std(axis=0)
            features = (features - features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        self.X = features
        self.y = labels.astype(np.int64)
        self.feature_names = [_clean(n) for n in names]
        self.class_names = [_clean(c) for c in classes]
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class names must stay distinct once cleaned, got {self.class_names}")
        self._rounded = np.round(self.X, 4)  # what the context shows; also what policies learn from
        low, high = (
            self._rounded.astype(np.float32).min(axis=0),
            self._rounded.astype(np.float32).max(axis=0),
        )
        high = np.where(
            high > low, high, low + 1.0
        )  # a constant column still needs a non-empty box
        k = len(self.class_names)
        self.action_space = spaces.Discrete(k)
        self.observation_space = spaces.Dict(
            {
                "context": spaces.Box(low, high, dtype=np.float32),
                "actions": spaces.Box(0.0, 1.0, shape=(k, k), dtype=np.float32),
            }
        )
        self._actions: list[ActionSpec] = [
            {"id": c, "features": {ACTION_NAMESPACE: {c: 1.0}}} for c in self.class_names
        ]

    def _build_world(self, rng: np.random.Generator) -> None:
        self._order = np.zeros(0, dtype=np.int64)
        self._position = 0
        self.epoch = 0

    def _next_context(self, rng: np.random.Generator) -> BanditBatch:
        if self._position >= len(self._order):
            self._order = rng.permutation(len(self.X))
            self._position = 0
            self.epoch += 1
        row = self._order[self._position]
        self._position += 1
        return self._contexts(np.array([row]))

    def sample_batch(self, n: int, rng: np.random.Generator) -> BanditBatch:
        return self._contexts(rng.integers(len(self.X), size=n))

    def _contexts(self, rows: np.ndarray) -> BanditBatch:
        k = len(self.class_names)
        correct = np.zeros((len(rows), k))
        correct[np.arange(len(rows)), self.y[rows]] = 1.0
        view = _SupervisedView(self, rows)
        return BanditBatch(correct, 1.0, 0.0, describe=view.describe, observe=view.observe)


@dataclass(frozen=True, eq=False)
class _SupervisedView:
    env: SupervisedBanditEnv  # the data never changes, so rows can be read from the env
    rows: np.ndarray

    def describe(self, i: int) -> tuple[Context, list[ActionSpec]]:
        env = self.env
        values = env._rounded[self.rows[i]].tolist()
        # Zero-valued features carry nothing for a linear learner; leaving them out keeps
        # requests and logs small (most digit pixels are 0 before standardizing, and a
        # constant column is 0 after).
        x = {name: v for name, v in zip(env.feature_names, values, strict=True) if v != 0.0}
        actions = [
            {"id": a["id"], "features": {ACTION_NAMESPACE: dict(a["features"][ACTION_NAMESPACE])}}
            for a in env._actions
        ]
        return {CONTEXT_NAMESPACE: x}, actions

    def observe(self, i: int) -> dict[str, np.ndarray]:
        k = len(self.env.class_names)
        context = self.env._rounded[self.rows[i]].astype(np.float32)
        return {"context": context, "actions": np.eye(k, dtype=np.float32)}
