"""Apprentice → online: promote the learned policy when its counterfactual lower bound beats
the default action's value.

In `apprentice` mode the app serves the default action (but for the floor) and learns in
the background. On the latest `window_events` joined decisions, the current model's pmf
π(a|x) (as it would serve online: its explorer and the floor) gives the IPS estimate of
its value, V̂ = mean of r·π(a_logged|x)/p_logged, with a 95% interval; the default action's
value is estimated the same way (π = 1 on the first action). When there are at least
`min_events` and the learned policy's lower bound exceeds the default action's estimate,
the app's mode becomes `online` (a config update) and a `promotion` event is recorded.

The estimate is only as tight as the logs allow: with the default floor (0.001) almost no
other action is ever served in apprentice mode and the bound stays wide; raise the app's
`min_probability` (e.g. 0.05) while it is an apprentice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import AppConfig
from ..decision.features import FeatureSet
from ..decision.record import META_KEY
from ..decision.sampling import event_seed
from ..eventlog import AppKeys, EventLog
from ..eventlog.records import joined_record
from ..reporting.buckets import estimate


def counterfactual(
    log: EventLog, app: str, config: AppConfig, window: int
) -> dict[str, Any] | None:
    """IPS estimates of the latest model and of the default action on recent joined decisions
    (single-slot apps; None when there is no model yet)."""
    from ..decision.engine import DecisionEngine  # the engine imports this package's assignment

    latest = log.models.latest(app)
    if latest is None or config.slots is not None:
        return None
    engine = DecisionEngine(config.model_copy(update={"mode": "online", "experiment": None}))
    engine.load_models(latest.models, latest.version)
    learned, default = [], []
    for _, fields in log.client.xrevrange(AppKeys(app).joined, count=window):
        record = joined_record(fields)
        meta = record[META_KEY]
        x = FeatureSet.from_dsjson_c(record["c"], meta["action_ids"])
        pi = engine.pmf(x, event_seed(config.seed, meta["event_id"]))
        chosen, p, r = record["_labelIndex"], record["_label_probability"], meta["reward"]
        learned.append(r * pi[chosen] / p)
        default.append(r / p if chosen == 0 else 0.0)
    if not learned:
        return None
    out: dict[str, Any] = {"events": len(learned), "model_version": latest.version}
    for name, w in (("learned", np.array(learned)), ("default_action", np.array(default))):
        n = np.float64(len(w))
        est = estimate(n, np.float64(w.sum()), np.float64((w * w).sum()))
        out[name] = {k: float(v) for k, v in est.items()}
    return out
