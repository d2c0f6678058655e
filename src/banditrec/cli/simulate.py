"""`banditrec simulate`: run one or more policies online in a simulator and compare them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app


def _env_kwargs(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--env-arg")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a bare string, e.g. dataset=wine
    return out


@app.command("simulate")
def simulate_command(
    env: Annotated[
        str, typer.Option(help="Registered env id, e.g. banditrec/Content-v0.")
    ] = "banditrec/Content-v0",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            help="A policy config: a YAML/JSON file (may hold a list or a {name: config} mapping), "
            'inline JSON such as \'{"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}}\', '
            "or a kind name (uniform, vw, linucb, …). Repeat to compare. Default: the env's suggested VW policy.",
        ),
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="Decisions per policy.")] = 10_000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the env and of every draw.")] = 0,
    env_arg: Annotated[
        list[str] | None,
        typer.Option("--env-arg", help="key=value for the env (value parsed as JSON); repeatable."),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Directory for comparison.png, summary.json and logs/.")
    ] = Path("runs/simulate"),
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Write each run's decisions as DSJson.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Run policies online in a simulator: decide, observe, learn. Prints reward and regret
    against the oracle and the uniform policy, and writes a reward/regret plot."""
    import gymnasium

    from ..envs import ENV_IDS, suggested_policy
    from ..simulate import PolicySpecError, compare, load_policy_specs
    from ..simulate.specs import unique_names

    if env not in gymnasium.registry:
        raise typer.BadParameter(
            f"cannot make env {env!r}: not registered; banditrec's are {list(ENV_IDS)}",
            param_hint="--env",
        )
    try:
        if policy:
            specs = unique_names([s for arg in policy for s in load_policy_specs(arg)])
        else:
            specs = load_policy_specs(json.dumps(suggested_policy(env)))
    except (PolicySpecError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--policy") from None
    kwargs = _env_kwargs(env_arg or [])
    try:
        comparison = compare(
            env,
            specs,
            steps=steps,
            seed=seed,
            env_kwargs=kwargs,
            out_dir=out,
            log=log,
            progress=progress,
        )
    except ValueError as e:  # unknown env, bad env argument
        raise typer.BadParameter(str(e), param_hint="--env / --env-arg") from None
    typer.echo(f"{comparison.env_id}: {steps} steps, seed {seed}\n")
    typer.echo(comparison.table())
    typer.echo(f"\nplot: {comparison.plot_path}\nsummary: {out / 'summary.json'}")
    if log:
        typer.echo(f"logs: {out / 'logs'}")
