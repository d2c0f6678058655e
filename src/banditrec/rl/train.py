"""Train an RLlib policy (PPO or DQN, RLlib's current API stack) in a simulator, on the CPU.

`train(settings)` builds the algorithm, runs `iterations` training iterations with a progress
bar, evaluates the exported module's true value every `eval_every` iterations (Monte Carlo
in the simulator, when the env supports it), saves RLlib checkpoints, and writes to `out`:

    policy.npz            the final module, exported (what an RL app serves; see policies/rl_module.py)
    best_policy.npz       the module with the best evaluated value (when evaluating)
    checkpoints/iter_N/   RLlib algorithm checkpoints (resume or inspect with RLlib), each
                          with its exported policy.npz
    history.json          one row per iteration: env steps, episode return, time, value
    learning_curve.png    the curve, with the baselines the env knows
    settings.json         what was asked for

A run is reproducible from its seed: RLlib seeds torch, numpy and the env runners, and with
no remote env runners or learners (the default here) sampling and learning happen in this
process, in a fixed order.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..policies.rl_module import ModuleCard, export_module, write_module
from ..replay.progress import progress_bar
from .envs import RewardSignal, action_ids, feature_names, make_env

log = logging.getLogger("banditrec.rl")

DEFAULT_ENV = "banditrec/EngagementJourney-v0"
_ENV_NAME = "banditrec_rl_env"


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str = DEFAULT_ENV
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    algo: Literal["ppo", "dqn"] = "ppo"
    iterations: int = Field(40, ge=1)
    seed: int = Field(0, ge=0)
    out: Path = Path("rl-run")
    hidden: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)
    lr: float | None = Field(None, gt=0.0, description="None: 1e-3 for PPO, 5e-4 for DQN")
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    train_batch_size: int = Field(4000, ge=32, description="PPO: env steps per iteration")
    minibatch_size: int = Field(256, ge=8)
    num_epochs: int = Field(10, ge=1)
    entropy_coeff: float = Field(0.0, ge=0.0)
    reward: RewardSignal = Field(
        "expected",
        description="Learn from each step's expected reward (simulators know it) or its draw",
    )
    envs_per_runner: int = Field(8, ge=1)
    env_runners: int = Field(0, ge=0, description="Remote env runners; 0 samples in-process")
    checkpoint_every: int = Field(10, ge=1)
    eval_every: int = Field(5, ge=1)
    eval_episodes: int = Field(2000, ge=0, description="Monte Carlo episodes; 0 = no evaluation")
    eval_seed: int = 10_000
    target_value: float | None = Field(
        None, description="Record (and stop, unless told not to) when an evaluation reaches this"
    )
    stop_at_target: bool = True


@dataclass
class TrainResult:
    out: Path
    policy_path: Path
    best_policy_path: Path | None
    history: list[dict[str, Any]]
    curve_path: Path | None
    checkpoints: list[Path] = field(default_factory=list)
    build_seconds: float = 0.0
    train_seconds: float = 0.0
    reached_target_at: dict[str, Any] | None = None

    @property
    def final_value(self) -> float | None:
        values = [h["true_value"] for h in self.history if h.get("true_value") is not None]
        return values[-1] if values else None


def ensure_ray() -> None:
    """Start Ray once per process (RLlib needs it), quietly, unless someone already did."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=os.cpu_count() or 2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            ignore_reinit_error=True,
        )


def _register_env(settings: TrainSettings) -> None:
    from ray.tune.registry import register_env

    env_id, kwargs, reward = settings.env, dict(settings.env_kwargs), settings.reward
    register_env(_ENV_NAME, lambda _cfg: make_env(env_id, kwargs, reward))


def algorithm_config(settings: TrainSettings) -> Any:
    """The RLlib AlgorithmConfig (current API stack: RLModule, Learner, EnvRunner)."""
    network = {"fcnet_hiddens": list(settings.hidden), "fcnet_activation": "tanh"}
    if settings.algo == "ppo":
        from ray.rllib.algorithms.ppo import PPOConfig

        config = PPOConfig().training(
            lr=settings.lr or 1e-3,
            gamma=settings.gamma,
            lambda_=0.95,
            train_batch_size=settings.train_batch_size,
            minibatch_size=settings.minibatch_size,
            num_epochs=settings.num_epochs,
            entropy_coeff=settings.entropy_coeff,
            vf_clip_param=100.0,  # returns are not small; RLlib's default (10) clips them
        )
        network["vf_share_layers"] = False
    else:
        from ray.rllib.algorithms.dqn import DQNConfig

        config = DQNConfig().training(
            lr=settings.lr or 5e-4,
            gamma=settings.gamma,
            train_batch_size=settings.minibatch_size,
            n_step=3,
            target_network_update_freq=1000,
            epsilon=[(0, 1.0), (20_000, 0.02)],
            replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 100_000},
        )
    return (
        config.api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(_ENV_NAME)
        .framework("torch")
        .env_runners(
            num_env_runners=settings.env_runners,
            num_envs_per_env_runner=settings.envs_per_runner,
        )
        .learners(num_learners=0)
        .rl_module(model_config=network)
        .debugging(seed=settings.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=100)
    )


def module_card(settings: TrainSettings, extra: dict[str, Any] | None = None) -> ModuleCard:
    env = make_env(settings.env, settings.env_kwargs)
    try:
        return ModuleCard(
            algo="PPO" if settings.algo == "ppo" else "DQN",
            network={},  # filled from the module itself at export
            feature_names=feature_names(env),
            action_ids=action_ids(env),
            env_id=settings.env,
            env_kwargs=settings.env_kwargs,
            training={"seed": settings.seed, "reward": settings.reward, **(extra or {})},
        )
    finally:
        env.close()


def export_algorithm(algo: Any, card: ModuleCard) -> bytes:
    """The current policy of a running RLlib algorithm, exported."""
    module = algo.get_module()
    space = module.observation_space
    card = card.model_copy(update={"network": json.loads(json.dumps(module.model_config))})
    return export_module(module, card, space.low, space.high)


Evaluator = Callable[[bytes], float | None]


def train(
    settings: TrainSettings,
    *,
    progress: bool | None = None,
    evaluate: Evaluator | None = None,
) -> TrainResult:
    """Train, checkpoint, export and plot; see the module doc. `evaluate(module_bytes)` gives a
    module's true value (default: Monte Carlo in the env when it supports it)."""
    from .evaluate import module_value_evaluator
    from .plot import plot_learning_curve

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(settings.model_dump_json(indent=2))
    if evaluate is None and settings.eval_episodes > 0:
        evaluate = module_value_evaluator(
            settings.env, settings.env_kwargs, settings.eval_episodes, settings.eval_seed
        )

    card = module_card(settings)  # checks the env before Ray starts
    started = time.perf_counter()
    ensure_ray()
    _register_env(settings)
    algo = algorithm_config(settings).build_algo()
    build_seconds = time.perf_counter() - started

    history: list[dict[str, Any]] = []
    checkpoints: list[Path] = []
    best: tuple[float, bytes] | None = None
    reached: dict[str, Any] | None = None
    train_started = time.perf_counter()
    data = b""
    try:
        with progress_bar(
            settings.iterations, f"train {settings.algo.upper()}", progress, unit=" it"
        ) as bar:
            for it in range(1, settings.iterations + 1):
                result = algo.train()
                runners = result.get("env_runners", {})
                row: dict[str, Any] = {
                    "iteration": it,
                    "env_steps": int(result.get("num_env_steps_sampled_lifetime", 0)),
                    "episode_return_mean": _float(runners.get("episode_return_mean")),
                    "episode_len_mean": _float(runners.get("episode_len_mean")),
                    "seconds": time.perf_counter() - train_started,
                    "true_value": None,
                }
                last = it == settings.iterations
                if evaluate is not None and (it % settings.eval_every == 0 or last):
                    data = export_algorithm(algo, card)
                    value = evaluate(data)
                    row["true_value"] = value
                    if value is not None and (best is None or value > best[0]):
                        best = (value, data)
                    if (
                        value is not None
                        and settings.target_value is not None
                        and value >= settings.target_value
                        and reached is None
                    ):
                        reached = dict(row)
                        last = last or settings.stop_at_target
                if it % settings.checkpoint_every == 0 or last:
                    checkpoints.append(_checkpoint(algo, card, out, it))
                history.append(row)
                bar.set_postfix(
                    ret=f"{row['episode_return_mean']:.3f}"
                    if row["episode_return_mean"] is not None
                    else "-",
                    value=f"{row['true_value']:.3f}" if row["true_value"] is not None else "-",
                )
                bar.update(1)
                if reached is not None and settings.stop_at_target:
                    break
        data = export_algorithm(algo, card)
    finally:
        algo.stop()
    train_seconds = time.perf_counter() - train_started

    policy_path = write_module(out / "policy.npz", data)
    best_path = write_module(out / "best_policy.npz", best[1]) if best is not None else None
    (out / "history.json").write_text(json.dumps(history, indent=2))
    curve = plot_learning_curve(
        history,
        out / "learning_curve.png",
        title=f"{settings.algo.upper()} on {settings.env}",
        baselines=_baselines(settings),
    )
    return TrainResult(
        out=out,
        policy_path=policy_path,
        best_policy_path=best_path,
        history=history,
        curve_path=curve,
        checkpoints=checkpoints,
        build_seconds=build_seconds,
        train_seconds=train_seconds,
        reached_target_at=reached,
    )


def _checkpoint(algo: Any, card: ModuleCard, out: Path, iteration: int) -> Path:
    path = out / "checkpoints" / f"iter_{iteration:06d}"
    algo.save_to_path(str(path.resolve()))
    write_module(path / "policy.npz", export_algorithm(algo, card))
    return path


def _baselines(settings: TrainSettings) -> dict[str, float]:
    if settings.eval_episodes <= 0:
        return {}
    from .evaluate import baseline_values

    return baseline_values(
        settings.env, settings.env_kwargs, settings.eval_episodes, settings.eval_seed
    )


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN (no episode finished yet) → None
