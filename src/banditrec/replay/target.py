"""A target policy's pmf on every logged row, through the engine that serves.

`DecisionEngine.pmf` is the final served pmf (mode, floor), seeded per event as serving
seeds it, so what is evaluated here is exactly what would be served. With learn=True the
policy also learns each logged event after deciding on it (progressive validation): each
row's pmf comes from a model that has seen only earlier rows, as online learning would.
"""

from __future__ import annotations

import numpy as np

from ..decision.engine import DecisionEngine
from ..decision.features import Interaction
from .dataset import LoggedBandit
from .progress import progress_bar


def check_slots(engine: DecisionEngine, data: LoggedBandit) -> None:
    served = set(engine.policies)
    needed = set(data.slot_names) if data.slot is not None else {None}
    missing = needed - served
    if missing:
        names = sorted(str(s) for s in missing)
        raise ValueError(
            f"the policy does not serve the log's slot(s) {names}; give it slots named like the "
            f"log's {[s for s in data.slot_names if s is not None] or '(single slot)'}"
        )


def target_pmfs(
    engine: DecisionEngine,
    data: LoggedBandit,
    *,
    learn: bool = False,
    progress: bool | None = None,
    desc: str = "target policy",
) -> np.ndarray:
    """(n, K) the engine's served pmf on each row, zero-padded like `data.pi_b`."""
    check_slots(engine, data)
    out = np.zeros_like(data.pi_b)
    app_seed = engine.config.seed
    with progress_bar(data.n, desc, progress, unit=" events") as bar:
        for i in range(data.n):
            x = data.feature_set(i)
            slot = data.slot_name(i)
            p = engine.pmf(x, data.seed(app_seed, i), slot=slot)
            if p.size != data.n_offered[i]:
                raise ValueError(
                    f"row {i}: the policy returned {p.size} probabilities for {data.n_offered[i]} actions"
                )
            out[i, : p.size] = p
            if learn:
                a = int(data.action[i])
                engine.learn(Interaction(x, a, float(data.pscore[i]), float(data.reward[i]), slot))
            bar.update(1)
    return out
