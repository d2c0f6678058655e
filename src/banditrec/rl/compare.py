"""RL vs the best contextual bandit vs a hand-written rule on the journey env.

Each policy's true expected return comes from Monte Carlo rollouts in the simulator; each is
also estimated off-policy (PDIS, WPDIS, DR, WDR, FQE) from the log of one behaviour
policy — by default an exploratory version of the RL policy (its module at a higher
temperature with a floor), as one would serve to collect data. The policies:

- `rl`: the trained module, served as an RL app (its action distribution);
- `myopic oracle`: the action with the best *true* immediate expected reward — the best any
  contextual bandit can do, since a bandit maximizes immediate reward;
- `vw bandit`: a Vowpal Wabbit contextual bandit (the env's suggested configuration)
  trained online in the env on immediate rewards, then frozen;
- `rule`: rest when the user's fatigue is above a threshold, otherwise the best immediate send.

The headline is the margin of RL over the best myopic policy, with its 95% interval.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tabulate import tabulate

from ..decision.engine import DecisionEngine
from .collect import journeys, write_jsonl
from .envs import action_ids as env_action_ids
from .envs import feature_names as env_feature_names
from .envs import make_env
from .evaluate import EnginePolicy, is_journey, rl_engine, true_value
from .ope import METHODS, evaluate_sequential
from .targets import engine_pmfs, state_pmfs
from .train import DEFAULT_ENV
from .trajectories import Trajectories, from_records


class CompareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    module: Path
    env: str = DEFAULT_ENV
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    episodes: int = Field(5000, ge=2, description="Monte Carlo episodes per policy")
    bandit_episodes: int | None = Field(
        None, ge=2, description="Monte Carlo episodes for the VW bandit (stepped, slower)"
    )
    seed: int = 0
    bandit: dict[str, Any] | None = Field(
        None, description="VW policy config; None: the env's suggested one"
    )
    bandit_steps: int = Field(30_000, ge=0, description="Online training steps; 0 = no VW bandit")
    rule_threshold: float = Field(1.0, ge=0.0)
    behaviour_temperature: float = Field(1.15, gt=0.0)
    behaviour_floor: float = Field(0.0, ge=0.0, le=1.0)
    log_episodes: int = Field(1000, ge=2)
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    n_boot: int = Field(1000, ge=10)
    n_boot_model: int = Field(50, ge=2)
    out: Path | None = None


def journey_expected_rewards(
    obs: np.ndarray, names: list[str], env_kwargs: dict[str, Any]
) -> np.ndarray:
    """(m, A) the immediate expected reward of every action, from journey observations."""
    from ..envs.journey import JourneyDynamics, JourneyParams, JourneyState

    col = {n: i for i, n in enumerate(names)}
    m = len(obs)
    state = JourneyState(
        engagement=obs[:, col["engagement"]],
        fatigue=obs[:, col["fatigue"]],
        days_since=np.zeros(m),
        day=np.zeros(m, dtype=np.int64),
        alive=np.ones(m, dtype=bool),
        responsiveness=obs[:, [col["resp_email"], col["resp_push"], col["resp_sms"]]],
        prefers_morning=obs[:, col["prefers_morning"]] > 0.5,
        value=obs[:, col["value"]],
    )
    params = JourneyParams(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in env_kwargs.items()}
    )
    return JourneyDynamics(params).expected_rewards(state)


def _rule_pmfs(
    traj: Trajectories, env_ids: list[str], env_kwargs: dict[str, Any], threshold: float | None
) -> np.ndarray:
    """Deterministic pmfs of the myopic oracle (threshold None) or the rule, over traj's actions."""
    fatigue = traj.feature_names.index("fatigue")
    order = [env_ids.index(a) for a in traj.action_ids]

    def pmfs(obs: np.ndarray) -> np.ndarray:
        q = journey_expected_rewards(obs, traj.feature_names, env_kwargs)
        best = np.argmax(q, axis=1)
        if threshold is not None:
            best = np.where(obs[:, fatigue] > threshold, 0, best)
        one_hot = np.zeros_like(q)
        one_hot[np.arange(len(q)), best] = 1.0
        return one_hot[:, order]

    return state_pmfs(traj, pmfs)


def _value_row(name: str, mc: Any) -> dict[str, Any]:
    return {
        "policy": name,
        "true_value": float(mc.mean),
        "true_low": float(mc.low),
        "true_high": float(mc.high),
        "true_stderr": float(mc.std_error),
        "episodes": int(mc.episodes),
        "ope": {},
    }


def compare(settings: CompareSettings, *, progress: bool | None = None) -> dict[str, Any]:
    """Run the comparison; returns (and, with `out`, writes) the summary. See the module doc."""
    from ..envs import suggested_policy
    from ..envs.journey_value import GreedyPolicy, RestWhenFatigued, monte_carlo_value
    from ..simulate import simulate

    if not is_journey(settings.env, settings.env_kwargs):
        raise ValueError(
            f"the comparison needs the journey env (its myopic oracle); got {settings.env}"
        )
    started = time.perf_counter()
    env = make_env(settings.env, settings.env_kwargs)
    names, env_ids = env_feature_names(env), env_action_ids(env)
    env.close()
    module = Path(settings.module).read_bytes()
    rl = rl_engine(module, name="rl")
    kw = settings.env_kwargs
    ep, seed = settings.episodes, settings.seed

    rows = {
        "rl": _value_row(
            "rl", true_value(EnginePolicy(rl, names, seed), settings.env, kw, ep, seed)
        ),
        "myopic oracle": _value_row(
            "myopic oracle", monte_carlo_value(GreedyPolicy(), ep, seed, env_kwargs=kw)
        ),
        "rule": _value_row(
            f"rule (rest if fatigue > {settings.rule_threshold:g})",
            monte_carlo_value(RestWhenFatigued(settings.rule_threshold), ep, seed, env_kwargs=kw),
        ),
    }
    bandit: DecisionEngine | None = None
    if settings.bandit_steps > 0:
        config = settings.bandit or suggested_policy(settings.env)
        run = simulate(
            settings.env,
            config,
            steps=settings.bandit_steps,
            seed=seed,
            env_kwargs=kw,
            progress=bool(progress),
        )
        bandit = run.engine
        assert bandit is not None
        mc = true_value(
            EnginePolicy(bandit, names, seed),
            settings.env,
            kw,
            settings.bandit_episodes or min(ep, 2000),
            seed,
            progress=bool(progress),
        )
        rows["vw bandit"] = _value_row("vw bandit", mc)

    behaviour = rl_engine(
        module,
        temperature=settings.behaviour_temperature,
        min_probability=settings.behaviour_floor,
        name="behaviour",
    )
    records = list(
        journeys(
            behaviour,
            settings.env,
            settings.log_episodes,
            seed + 1,
            env_kwargs=kw,
            episode_prefix="log",
            progress=progress,
        )
    )
    if settings.out is not None:
        write_jsonl(records, Path(settings.out) / "behaviour_log.jsonl")
    traj = from_records(records)
    targets = {
        "rl": engine_pmfs(rl, traj),
        "myopic oracle": _rule_pmfs(traj, env_ids, kw, None),
        "rule": _rule_pmfs(traj, env_ids, kw, settings.rule_threshold),
    }
    if bandit is not None:
        targets["vw bandit"] = engine_pmfs(bandit, traj, progress=progress)
    diagnostics = {}
    for key, pi_e in targets.items():
        report = evaluate_sequential(
            traj,
            pi_e,
            methods=settings.methods,
            n_boot=settings.n_boot,
            n_boot_model=settings.n_boot_model,
            rng=seed,
            progress=progress,
        )
        rows[key]["ope"] = {m: e.to_dict() for m, e in report.estimates.items()}
        diagnostics[key] = report.diagnostics.to_dict()

    myopic = [k for k in ("myopic oracle", "vw bandit") if k in rows]
    best = max(myopic, key=lambda k: rows[k]["true_value"])
    margin = rows["rl"]["true_value"] - rows[best]["true_value"]
    se = math.hypot(rows["rl"]["true_stderr"], rows[best]["true_stderr"])
    summary = {
        "env": settings.env,
        "seed": seed,
        "episodes": ep,
        "behaviour": {
            "policy": "rl module",
            "temperature": settings.behaviour_temperature,
            "min_probability": settings.behaviour_floor,
            "episodes": settings.log_episodes,
            "steps": int(traj.mask.sum()),
        },
        "policies": list(rows.values()),
        "weight_diagnostics": diagnostics,
        "margin": {
            "versus": rows[best]["policy"],
            "value": margin,
            "low": margin - 1.96 * se,
            "high": margin + 1.96 * se,
            "relative": margin / abs(rows[best]["true_value"])
            if rows[best]["true_value"]
            else math.nan,
        },
        "seconds": time.perf_counter() - started,
    }
    if settings.out is not None:
        from .plot import plot_comparison

        out = Path(settings.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(json.dumps(summary, indent=2))
        plot_comparison(
            summary["policies"],
            out / "comparison.png",
            title=f"Journeys: true value and OPE from an exploratory RL log ({settings.log_episodes} journeys)",
        )
        summary["plot"] = str(out / "comparison.png")
    return summary


def _ope_cell(e: dict[str, float] | None, truth: float) -> str:
    """An OPE estimate ± its interval's half width, starred when the interval holds the truth."""
    if e is None:
        return "-"
    mark = "*" if e["ci_low"] <= truth <= e["ci_high"] else " "
    return f"{e['value']:.3f} ±{(e['ci_high'] - e['ci_low']) / 2:5.3f}{mark}"


def comparison_table(summary: dict[str, Any]) -> str:
    methods = sorted(
        {m for row in summary["policies"] for m in row["ope"]}, key=list(METHODS).index
    )
    rows = [
        [
            row["policy"],
            f"{row['true_value']:.3f} [{row['true_low']:.3f}, {row['true_high']:.3f}]",
            *(_ope_cell(row["ope"].get(m), row["true_value"]) for m in methods),
        ]
        for row in summary["policies"]
    ]
    header = ["policy", "true value (95% CI)", *(m.upper() for m in methods)]
    align = ["left", *["right"] * (len(header) - 1)]
    lines = [tabulate(rows, header, disable_numparse=True, colalign=align), ""]
    m = summary["margin"]
    lines.append("(* = the OPE interval contains the Monte Carlo truth)")
    lines.append(
        f"RL − {m['versus']}: {m['value']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}] "
        f"({m['relative']:+.0%}), seed {summary['seed']}, {summary['episodes']} episodes per policy"
    )
    return "\n".join(lines)
