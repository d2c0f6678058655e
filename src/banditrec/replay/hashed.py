"""The hashed design of a logged bandit: each row's `FeatureSet.hashed(dim)` (action
features and context × action crosses, zero-padded to the log's K actions), produced in
chunks of rows for the reward model (reward_model.py) when the log has no dense context.

Rows whose inputs are identical share one featurization (a bounded cache); the whole
design is kept in memory only while it fits `_DESIGN_BUDGET_BYTES`, else featurized again
for each pass (fit, then score) rather than running out of memory on a large log.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .dataset import LoggedBandit
from .progress import progress_bar

_FEATURE_CHUNK = 4096
# Keep the whole (n, K, dim) design in memory only up to this size; beyond it, featurize
# twice (fit, then score) rather than run out of memory on a large log.
_DESIGN_BUDGET_BYTES = 1 << 30
_CACHE_BUDGET_BYTES = 1 << 28


class HashedFeatures:
    """Each row's `FeatureSet.hashed(dim)` (zero-padded), produced in chunks of rows."""

    def __init__(self, data: LoggedBandit, dim: int, progress: bool | None) -> None:
        self.data, self.dim, self.progress = data, dim, progress
        per_row = data.n_actions * dim
        self.keep = data.n * per_row * 4 <= _DESIGN_BUDGET_BYTES
        self.stored: list[np.ndarray] = []
        self.cache: dict[bytes, np.ndarray] = {}
        self.cache_limit = max(1, _CACHE_BUDGET_BYTES // (per_row * 8))

    def _featurize(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((stop - start, self.data.n_actions, self.dim), dtype=np.float32)
        for row in range(start, stop):
            x = self.data.feature_set(row)
            key = x.vw_json()
            matrix = self.cache.get(key)
            if matrix is None:
                matrix = x.hashed(self.dim)
                if len(self.cache) < self.cache_limit:
                    self.cache[key] = matrix
            out[row - start, : matrix.shape[0]] = matrix
        return out

    def chunks(self, desc: str) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, (rows, K, dim) float32) over the whole log."""
        if self.stored:
            yield from zip(range(0, self.data.n, _FEATURE_CHUNK), self.stored, strict=True)
            return
        with progress_bar(self.data.n, desc, self.progress, unit=" events") as bar:
            for start in range(0, self.data.n, _FEATURE_CHUNK):
                block = self._featurize(start, min(start + _FEATURE_CHUNK, self.data.n))
                if self.keep:
                    self.stored.append(block)
                yield start, block
                bar.update(block.shape[0])


def hashed_design(data: LoggedBandit, dim: int, progress: bool | None = None) -> np.ndarray:
    """(n, K, dim) float32: each row's `FeatureSet.hashed(dim)`, zero-padded."""
    blocks = [block for _, block in HashedFeatures(data, dim, progress).chunks("featurizing")]
    return np.concatenate(blocks) if blocks else np.zeros((0, data.n_actions, dim), np.float32)
