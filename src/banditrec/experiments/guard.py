"""Watching an experiment: the sample-ratio-mismatch check and the guardrail.

Run after each reporting pass (`ReportingPool`), on the arms' joined decisions of the last
`guardrail.window_minutes`:

- **SRM**: Pearson's χ² test of the decisions per arm against the configured weights
  (arms of weight > 0), flagged when p < `srm_p_value` (Fabijan et al., *Diagnosing
  Sample Ratio Mismatch in Online Controlled Experiments*, KDD 2019). A mismatch means the
  split is broken (units lost, duplicated or steered), so no estimate of the experiment
  is to be trusted until it is found.
- **Guardrail**: when an arm of kind `learned` or `policy` and the first arm of kind
  `default` both have `min_decisions`, and the guarded arm's 95% upper bound on the mean
  reward is below the default arm's lower bound, the guarded arm's weight moves to the
  default arm (a config update, as a PATCH would do it): its units are served the default
  action.
- **Off-policy estimates** (every `evaluation.interval_seconds`): each arm's value on all
  arms' traffic beside its online value on its own slice (experiments/offpolicy.py).

Each state change and action is an event in `br:{app}:exp:events` (a stream, newest
1,000 kept); the current state is `br:{app}:exp:state`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from ..config import AppConfig
from ..eventlog import AppKeys, EventLog
from ..eventlog.errors import UNAVAILABLE, EventLogUnavailable
from ..reporting.report import reports
from ..reporting.store import ReportStore
from .config import GUARDED_KINDS, ExperimentConfig
from .offpolicy import arm_estimates
from .promotion import counterfactual

MAX_EVENTS = 1000
log = logging.getLogger("banditrec.experiments")


def events_key(app: str) -> str:
    return f"{AppKeys(app).base}:exp:events"


def state_key(app: str) -> str:
    return f"{AppKeys(app).base}:exp:state"


def srm(experiment: ExperimentConfig, decisions: dict[str, int]) -> dict[str, Any]:
    """χ² test of the decisions per arm against the weights.

    >>> from banditrec.experiments import ExperimentConfig
    >>> e = ExperimentConfig(name="e", arms=[{"name": "a", "kind": "learned"},
    ...                                      {"name": "b", "kind": "default"}])
    >>> srm(e, {"a": 5000, "b": 5000})["state"], srm(e, {"a": 5300, "b": 4700})["state"]
    ('ok', 'mismatch')
    """
    arms = [a for a in experiment.arms if a.weight > 0]
    observed = [decisions.get(a.name, 0) for a in arms]
    total = sum(observed)
    if len(arms) < 2 or total < 10 * len(arms):
        return {
            "state": "too_few",
            "p_value": None,
            "observed": dict(zip([a.name for a in arms], observed, strict=True)),
        }
    weights = sum(a.weight for a in arms)
    expected = [total * a.weight / weights for a in arms]
    # Imported here: scipy.stats takes ~0.5 s to import, paid by every replica at start.
    from scipy.stats import chisquare

    p = float(chisquare(observed, expected).pvalue)
    return {
        "state": "mismatch" if p < experiment.srm_p_value else "ok",
        "p_value": p,
        "observed": {a.name: o for a, o in zip(arms, observed, strict=True)},
        "expected": {a.name: round(e, 1) for a, e in zip(arms, expected, strict=True)},
    }


def _tripped(experiment: ExperimentConfig, arms: dict[str, Any]) -> tuple[str, str] | None:
    """(learned arm, message) if a learned arm is surely worse than the default arm."""
    g = experiment.guardrail
    default = next((a for a in experiment.arms if a.kind == "default"), None)
    if not g.enabled or default is None or default.name not in arms:
        return None
    base = arms[default.name]
    for arm in experiment.arms:
        if arm.kind not in GUARDED_KINDS or arm.weight == 0 or arm.name not in arms:
            continue
        mine = arms[arm.name]
        if min(mine["decisions"], base["decisions"]) < g.min_decisions:
            continue
        upper, lower = mine["reward"]["upper"], base["reward"]["lower"]
        if upper is not None and lower is not None and upper < lower:
            return arm.name, (
                f"arm {arm.name}: reward upper bound {upper:.4f} is below the lower bound "
                f"{lower:.4f} of {default.name}; its traffic moves to {default.name}"
            )
    return None


def _shift_to_default(config: AppConfig, arm_name: str) -> AppConfig:
    """The config with the arm's weight moved to the first default arm (unchanged if the
    experiment changed meanwhile so that there is nothing to move)."""
    if config.experiment is None:
        return config
    exp = config.experiment.model_copy(deep=True)
    moved = next((a for a in exp.arms if a.name == arm_name), None)
    default = next((a for a in exp.arms if a.kind == "default"), None)
    if moved is None or default is None or moved.weight == 0:
        return config
    default.weight, moved.weight = default.weight + moved.weight, 0.0
    return config.model_copy(update={"experiment": exp})


class Supervisor:
    """Checks the experiments of a Redis's apps; records what it finds and does."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.store = ReportStore(log.client)
        self._last: dict[tuple[str, str], float] = {}  # (app, pass) → when it last ran

    def _due(self, app: str, what: str, interval_s: float) -> bool:
        """Whether the counterfactual pass `what` is due for `app` (and if so, it now ran)."""
        now = time.monotonic()
        if now - self._last.get((app, what), -1e18) < interval_s:
            return False
        self._last[app, what] = now
        return True

    def record(self, app: str, kind: str, message: str, **data: Any) -> None:
        fields = {"at": repr(time.time()), "kind": kind, "message": message}
        fields["data"] = orjson.dumps(data).decode()
        self.log.client.xadd(events_key(app), fields, maxlen=MAX_EVENTS, approximate=True)

    def events(self, app: str, count: int = 20) -> list[dict[str, Any]]:
        out = []
        for _, f in self.log.client.xrevrange(events_key(app), count=count):
            d = {k.decode(): v.decode() for k, v in f.items()}
            out.append({"at": float(d["at"]), "kind": d["kind"], "message": d["message"]})
        return out

    def state(self, app: str) -> dict[str, Any] | None:
        raw = self.log.client.get(state_key(app))
        return orjson.loads(raw) if raw else None

    def promote(self, app: str, config: AppConfig) -> dict[str, Any] | None:
        """Apprentice → online when the evidence is there (experiments/promotion.py)."""
        rule = config.promotion
        if rule is None or not rule.enabled or config.mode != "apprentice":
            return None
        found = counterfactual(self.log, app, config, rule.window_events)
        if found is None or found["events"] < rule.min_events:
            return found
        lower, base = found["learned"]["lower"], found["default_action"]["mean"]
        if lower > base:
            message = (
                f"model {found['model_version']}: counterfactual lower bound {lower:.4f} beats "
                f"the default action's {base:.4f} on {found['events']} decisions; mode online"
            )

            def online(current: AppConfig) -> AppConfig:
                if current.mode != "apprentice":
                    return current
                return current.model_copy(update={"mode": "online"})

            self.log.configs.update(app, online)
            self.record(app, "promotion", message, **found)
        return found

    def _estimates(self, app: str, config: AppConfig) -> dict[str, Any] | None:
        """The arms' online and off-policy estimates; None (the last ones stay) on failure."""
        assert config.experiment is not None
        try:
            found = arm_estimates(self.log, app, config, config.experiment.evaluation.window_events)
        except (*UNAVAILABLE, EventLogUnavailable):
            raise
        except Exception:  # a model or record it cannot read: the SRM check and guardrail go on
            log.exception("app %s: off-policy estimates of the arms failed", app)
            return None
        if found is not None:
            found["at"] = time.time()
        return found

    def check(self, app: str, now: float | None = None) -> dict[str, Any] | None:
        """Run the SRM check and the guardrail on `app`, and the promotion of an apprentice;
        the experiment's new state (None: no experiment)."""
        config = self.log.configs.get(app)
        if config is None:
            return None
        rule = config.promotion
        if rule is not None and self._due(app, "promotion", rule.interval_seconds):
            self.promote(app, config)
        if config.experiment is None:
            return None
        exp = config.experiment
        previous = self.state(app) or {}
        same = previous.get("experiment") == exp.name
        estimates = previous.get("estimates") if same else None
        if exp.evaluation.enabled and self._due(app, "evaluation", exp.evaluation.interval_seconds):
            estimates = self._estimates(app, config) or estimates
        window = reports(
            self.store, [app], resolution="minute", hours=exp.guardrail.window_minutes / 60, now=now
        )[app]["window"]["arms"]
        result = srm(exp, {arm: s["decisions"] for arm, s in window.items()})
        if result["state"] == "mismatch" and previous.get("srm", {}).get("state") != "mismatch":
            self.record(
                app,
                "srm",
                f"sample ratio mismatch in {exp.name}: p = {result['p_value']:.2g}",
                **result,
            )
        state = {
            "experiment": exp.name,
            "srm": result,
            "estimates": estimates,
            "checked_at": time.time(),
        }
        tripped = _tripped(exp, window)
        if tripped is not None:
            arm, message = tripped
            self.log.configs.update(app, lambda current: _shift_to_default(current, arm))
            self.record(app, "guardrail", message, arm=arm)
        self.log.client.set(state_key(app), orjson.dumps(state))
        return state
