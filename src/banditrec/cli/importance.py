"""`banditrec importance LOG --policy SPEC`: how much each namespace is worth to a policy.

Each namespace is withheld in turn, the policy is trained again over the log without it
(counterfactual training) and the value lost is estimated off-policy, with a paired
interval; the learned weights' share of each namespace is shown beside it (see
replay/importance.py). A PNG plot shows the value lost with its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..replay.importance import feature_importance
from ..replay.readers import LogFormatError, read_dsjson
from ..replay.registry import ESTIMATORS
from .app import app
from .evaluate import JsonOut, Limit, Progress, parse_policy, show_report


@app.command("importance")
def importance_command(
    log: Annotated[
        Path, typer.Argument(help="DSJson log: an export, a simulator run, VW's DSJson.")
    ],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            "-p",
            help="The policy (or app config) to explain: a YAML/JSON file, inline YAML/JSON or a kind.",
        ),
    ],
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Repeatable; default: every namespace in the log."),
    ] = None,
    estimator: Annotated[str, typer.Option(help=f"One of {', '.join(sorted(ESTIMATORS))}.")] = "dr",
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="1 − confidence level.")] = 0.05,
    plot: Annotated[
        Path | None, typer.Option(help="PNG to write (default: <log name>.importance.png here).")
    ] = None,
    json_out: JsonOut = None,
    limit: Limit = None,
    seed: Annotated[int, typer.Option(help="Seed of the reward model's cross-fitting.")] = 0,
    progress: Progress = True,
) -> None:
    """Rank the log's namespaces by the policy value lost when each is withheld."""
    if estimator not in ESTIMATORS:
        raise typer.BadParameter(f"one of {sorted(ESTIMATORS)}", param_hint="--estimator")
    try:
        data = read_dsjson(log, limit=limit, progress=progress)
    except (LogFormatError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    candidate = parse_policy(policy, data)
    try:
        report = feature_importance(
            data,
            candidate.config,
            namespaces=namespace,
            method=estimator,
            alpha=alpha,
            seed=seed,
            progress=progress,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    show_report(report, log, "importance", plot, json_out)
