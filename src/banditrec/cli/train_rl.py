"""`banditrec train-rl | compare-rl | ope-rl`: reinforcement-learning policies for journeys.

torch and RLlib (the `rl` extra) are imported only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .simulate import _env_kwargs

_DEFAULT_ENV = "banditrec/EngagementJourney-v0"


def _hidden(raw: str) -> list[int]:
    try:
        sizes = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{raw!r} is not a list of layer sizes like 64,64", param_hint="--hidden"
        ) from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(
            "give one or more positive layer sizes, e.g. 64,64", param_hint="--hidden"
        )
    return sizes


@app.command("train-rl")
def train_rl_command(
    env: Annotated[
        str,
        typer.Option(help="Registered Gymnasium env id (flat Box observation, Discrete actions)."),
    ] = _DEFAULT_ENV,
    algo: Annotated[
        str, typer.Option(help="ppo or dqn (RLlib, current API stack, torch on the CPU).")
    ] = "ppo",
    iterations: Annotated[int, typer.Option(min=1, help="Training iterations.")] = 40,
    seed: Annotated[int, typer.Option(min=0, help="Seed of RLlib, torch, numpy and the env.")] = 0,
    out: Annotated[
        Path,
        typer.Option(
            help="Directory for policy.npz, checkpoints/, history.json, learning_curve.png."
        ),
    ] = Path("runs/rl"),
    env_arg: Annotated[
        list[str] | None,
        typer.Option("--env-arg", help="key=value for the env (JSON value); repeatable."),
    ] = None,
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, comma-separated.")] = "64,64",
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (default: 1e-3 PPO, 5e-4 DQN).")
    ] = None,
    train_batch_size: Annotated[
        int, typer.Option(min=32, help="PPO: env steps per iteration.")
    ] = 4000,
    reward: Annotated[
        str,
        typer.Option(
            help="Learn from each step's 'expected' reward (simulators know it) or its 'sampled' draw."
        ),
    ] = "expected",
    checkpoint_every: Annotated[int, typer.Option(min=1)] = 10,
    eval_every: Annotated[
        int, typer.Option(min=1, help="Evaluate the policy's true value every N iterations.")
    ] = 5,
    eval_episodes: Annotated[
        int, typer.Option(min=0, help="Monte Carlo episodes per evaluation (0: none).")
    ] = 2000,
    target_value: Annotated[
        float | None, typer.Option(help="Stop once an evaluation reaches this true value.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train an RLlib policy in a simulator; writes the exported module an RL app serves."""
    from pydantic import ValidationError

    from ..rl.train import TrainSettings, train

    try:
        settings = TrainSettings(
            env=env,
            env_kwargs=_env_kwargs(env_arg or []),
            algo=algo.lower(),  # type: ignore[arg-type]
            iterations=iterations,
            seed=seed,
            out=out,
            hidden=_hidden(hidden),
            lr=lr,
            train_batch_size=train_batch_size,
            reward=reward,  # type: ignore[arg-type]
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            eval_episodes=eval_episodes,
            target_value=target_value,
        )
    except ValidationError as exc:
        raise typer.BadParameter(_first_error(exc)) from None
    try:
        result = train(settings, progress=progress)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    last = result.history[-1]
    typer.echo(
        f"trained {len(result.history)} iterations, {last['env_steps']} env steps in {result.train_seconds:.0f} s (+{result.build_seconds:.0f} s start-up)"
    )
    if result.final_value is not None:
        typer.echo(f"true value of the final policy: {result.final_value:.4f}")
    if result.reached_target_at is not None:
        r = result.reached_target_at
        typer.echo(
            f"reached {target_value} at iteration {r['iteration']} ({r['env_steps']} env steps, {r['seconds']:.0f} s)"
        )
    typer.echo(f"policy: {result.policy_path}")
    if result.curve_path is not None:
        typer.echo(f"learning curve: {result.curve_path}")


@app.command("compare-rl")
def compare_rl_command(
    module: Annotated[
        Path | None,
        typer.Option(
            help="Exported module (policy.npz from train-rl); default: the packaged journey policy."
        ),
    ] = None,
    env_arg: Annotated[
        list[str] | None,
        typer.Option("--env-arg", help="key=value for the env (JSON value); repeatable."),
    ] = None,
    episodes: Annotated[int, typer.Option(min=2, help="Monte Carlo episodes per policy.")] = 5000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    bandit_steps: Annotated[
        int, typer.Option(min=0, help="Online training steps of the VW bandit (0: leave it out).")
    ] = 30_000,
    log_episodes: Annotated[
        int, typer.Option(min=2, help="Journeys logged by the behaviour policy for OPE.")
    ] = 1000,
    behaviour_temperature: Annotated[
        float, typer.Option(min=0.01, help="The behaviour policy: the module at this temperature…")
    ] = 1.15,
    behaviour_floor: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="…with this probability floor.")
    ] = 0.0,
    bootstrap_fits: Annotated[
        int, typer.Option(min=2, help="FQE refits for the FQE / DR intervals.")
    ] = 50,
    out: Annotated[
        Path,
        typer.Option(help="Directory for comparison.json, comparison.png, behaviour_log.jsonl."),
    ] = Path("runs/compare-rl"),
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """RL vs the best contextual bandit vs a rule on the journey env: true value and OPE."""
    from ..rl.compare import CompareSettings, compare, comparison_table
    from ..rl.pretrained import JOURNEY_PPO

    settings = CompareSettings(
        module=module or JOURNEY_PPO,
        env_kwargs=_env_kwargs(env_arg or []),
        episodes=episodes,
        seed=seed,
        bandit_steps=bandit_steps,
        log_episodes=log_episodes,
        behaviour_temperature=behaviour_temperature,
        behaviour_floor=behaviour_floor,
        n_boot_model=bootstrap_fits,
        out=out,
    )
    try:
        summary = compare(settings, progress=progress)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(comparison_table(summary))
    typer.echo(f"\n{out / 'comparison.json'}, {summary.get('plot')}")


@app.command("ope-rl")
def ope_rl_command(
    log: Annotated[
        Path, typer.Option(help="DSJson log of journeys (the service's export or a simulator run).")
    ],
    module: Annotated[Path, typer.Option(help="The RL module to evaluate (policy.npz).")],
    temperature: Annotated[
        float, typer.Option(min=0.01, help="The target app's temperature.")
    ] = 1.0,
    greedy: Annotated[
        bool, typer.Option("--greedy/--no-greedy", help="Evaluate the module's most likely action.")
    ] = False,
    min_probability: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The target app's floor.")
    ] = 0.0,
    discount: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    bootstrap_fits: Annotated[
        int, typer.Option(min=2, help="FQE refits for the FQE / DR intervals.")
    ] = 50,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the bootstrap.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the estimates as JSON here.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Sequential off-policy evaluation (PDIS, WPDIS, DR, WDR, FQE) of an RL module on a log."""
    from ..policies.rl_module import ModuleFormatError
    from ..replay.readers import LogFormatError
    from ..rl.evaluate import rl_engine
    from ..rl.ope import evaluate_sequential
    from ..rl.targets import engine_pmfs
    from ..rl.trajectories import read_trajectories

    if not module.is_file():
        raise typer.BadParameter(f"no module at {module}", param_hint="--module")
    try:
        engine = rl_engine(
            str(module), temperature=temperature, greedy=greedy, min_probability=min_probability
        )
    except ModuleFormatError as exc:
        raise typer.BadParameter(str(exc), param_hint="--module") from None
    try:
        traj = read_trajectories(log, progress=progress, feature_names=engine.policy.feature_names)  # type: ignore[attr-defined]
        pi_e = engine_pmfs(engine, traj)
        report = evaluate_sequential(
            traj, pi_e, discount=discount, n_boot_model=bootstrap_fits, rng=seed, progress=progress
        )
    except (FileNotFoundError, LogFormatError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--log") from None
    typer.echo(report.table())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), indent=2))
        typer.echo(f"\n{out}")


def _first_error(exc) -> str:
    err = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
