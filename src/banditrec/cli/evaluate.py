"""`banditrec evaluate LOG --policy … --policy …`: which policy should this app run?

Each --policy is re-run over the log in time order, learning as it goes (counterfactual
training), and its value is estimated with intervals; the table ranks them, gives each
estimate's data-quality report and ends with a recommendation, and a PNG plot shows the
estimates. `--discover` searches learning settings instead (replay/discovery.py). LOG is a
DSJson log, a table (.parquet / .csv) or obp's `bandit_feedback` saved with `np.savez`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from ..policy_config import VWPolicyConfig
from ..replay.counterfactual import Candidate, counterfactual, make_candidate
from ..replay.dataset import LoggedBandit
from ..replay.discovery import discover
from ..replay.importers import from_obp, from_table
from ..replay.intervals import INTERVALS
from ..replay.readers import LogFormatError, read_dsjson
from ..replay.registry import ESTIMATORS
from ..replay.slate_replay import is_slate_log
from .app import app
from .evaluate_slates import evaluate_slate_log

# The options every report command takes (evaluate, importance).
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Read at most this many decisions.")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]

_NAMED = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$", re.DOTALL)


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # e.g. inline YAML longer than a file name may be
        return False


def _load_spec(text: str) -> tuple[Any, str | None]:
    """(parsed spec, a default name): a YAML/JSON file, inline YAML/JSON, a bare kind, or a
    VW learning-settings string as Personalizer wrote them (`--cb_explore_adf --epsilon 0.2 …`)."""
    if text.lstrip().startswith("--"):
        from ..personalizer import LearningSettingsError, parse_learning_settings

        try:
            policy = parse_learning_settings(text, VWPolicyConfig(action_id_feature=False))
        except LearningSettingsError as exc:
            raise typer.BadParameter(f"learning settings {text!r}: {exc}") from None
        return policy.model_dump(mode="json", by_alias=True), None
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or _is_file(text):
        if not path.is_file():
            raise typer.BadParameter(f"no policy file at {path}")
        return yaml.safe_load(path.read_text()), path.stem
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise typer.BadParameter(
            f"{text!r} is neither a policy file nor inline YAML/JSON ({exc})"
        ) from None
    if isinstance(spec, str):  # a bare policy kind: "uniform", "linucb", …
        spec = {"kind": spec}
    return spec, None


def _default_name(spec: Any) -> str:
    policy = spec.get("policy", spec) if isinstance(spec, dict) else {}
    if not isinstance(policy, dict):
        return "policy"
    parts = [str(policy.get("kind", "vw"))]
    explorer = policy.get("explorer")
    if isinstance(explorer, dict):
        parts.append(str(explorer.get("type", "epsilon")))
        parts += [f"{k}={v}" for k, v in explorer.items() if k != "type"]
    return ":".join(parts)


def parse_policy(option: str, data: LoggedBandit | None = None) -> Candidate:
    """One --policy value: `[NAME=]SPEC`, SPEC a YAML/JSON file, inline YAML/JSON or a kind."""
    name = None
    match = _NAMED.match(option)
    if match and not _is_file(option):
        name, option = match.group(1), match.group(2)
    spec, file_name = _load_spec(option)
    if not isinstance(spec, dict):
        raise typer.BadParameter(
            f"policy {option!r} must be a mapping: a policy config like "
            "'{kind: vw, explorer: {type: softmax, lambda: 10}}' or an app config"
        )
    try:
        return make_candidate(name or file_name or _default_name(spec), spec, data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        raise typer.BadParameter(f"policy {option!r} is not valid: {problems}") from None


def read_log(path: Path, limit: int | None = None, progress: bool = True) -> LoggedBandit:
    """A log by its file type: a table (.parquet, .csv, .csv.gz), obp's `bandit_feedback`
    saved with `np.savez` (.npz), otherwise DSJson (.gz ok)."""
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or ".csv" in suffixes:
        data = from_table(path)
    elif suffixes.endswith(".npz"):
        if not path.is_file():
            raise FileNotFoundError(f"no log file at {path}")
        import numpy as np

        with np.load(path, allow_pickle=False) as arrays:
            data = from_obp({k: arrays[k] for k in arrays.files})
    else:
        return read_dsjson(path, limit=limit, progress=progress)
    return data if limit is None or limit >= data.n else data.take(range(limit))


def _unique_names(candidates: list[Candidate]) -> list[Candidate]:
    seen: dict[str, int] = {}
    out = []
    for c in candidates:
        count = seen.get(c.name, 0)
        seen[c.name] = count + 1
        out.append(c if count == 0 else Candidate(f"{c.name}#{count + 1}", c.config))
    return out


@app.command("evaluate")
def evaluate_command(
    log: Annotated[
        Path,
        typer.Argument(
            help="DSJson log (an export of the live service, a simulator run or VW's DSJson; "
            ".gz ok), a table (.parquet / .csv: action, probability, reward, context columns, "
            "optional position) or obp's bandit_feedback saved with np.savez (.npz)."
        ),
    ],
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            help="[NAME=]SPEC, repeatable. SPEC: a YAML/JSON file or inline YAML/JSON of a policy "
            "config (e.g. '{kind: vw, explorer: {type: epsilon, epsilon: 0.05}}') or an app config, "
            "a bare kind ('uniform'), or VW learning settings ('--cb_explore_adf --epsilon 0.2 …'). "
            "With --discover: the VW policy the search starts from.",
        ),
    ] = None,
    discover_settings: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="Search VW learning settings (interactions, explorers, learning rates, cb "
            "types) on this log and recommend one with the lower-bound rule.",
        ),
    ] = False,
    current: Annotated[
        str | None,
        typer.Option(help="Name of the --policy running now; default: the logging policy."),
    ] = None,
    estimator: Annotated[
        list[str] | None,
        typer.Option(
            "--estimator", "-e", help=f"Repeatable; one of {', '.join(sorted(ESTIMATORS))}."
        ),
    ] = None,
    primary: Annotated[
        str | None,
        typer.Option(help="Estimator that ranks and recommends (default: the last one)."),
    ] = None,
    interval: Annotated[str, typer.Option(help=f"One of {', '.join(INTERVALS)}.")] = "normal",
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="1 − confidence level.")] = 0.05,
    reward_model: Annotated[
        str, typer.Option(help="auto, ridge, logistic or action_mean (for DM / DR).")
    ] = "auto",
    learn: Annotated[
        bool,
        typer.Option(
            help="Let each policy learn from the log as it goes (--no-learn: as configured)."
        ),
    ] = True,
    plot: Annotated[
        Path | None, typer.Option(help="PNG to write (default: <log name>.evaluation.png here).")
    ] = None,
    json_out: JsonOut = None,
    limit: Limit = None,
    seed: Annotated[int, typer.Option(help="Seed of cross-fitting folds and bootstrap.")] = 0,
    progress: Progress = True,
) -> None:
    """Estimate, with intervals, what each --policy would have earned on the logged traffic.

    On a slate log (docs/slates.md) the estimators are cascade_ips, cascade_dr,
    independent and slate_ips."""
    if log.is_file() and is_slate_log(log):
        slate_candidates = [
            (c.name, c.config) for c in _unique_names([parse_policy(p) for p in policy])
        ]
        return evaluate_slate_log(
            log,
            slate_candidates,
            estimator,
            learn=learn,
            alpha=alpha,
            limit=limit,
            json_out=json_out,
        )
    methods = estimator or ["ips", "snips", "dr"]
    unknown = [m for m in methods if m not in ESTIMATORS]
    if unknown:
        raise typer.BadParameter(
            f"unknown estimator(s) {unknown}; choose from {sorted(ESTIMATORS)}"
        )
    if interval not in INTERVALS:
        raise typer.BadParameter(f"interval must be one of {list(INTERVALS)}, got {interval!r}")
    if not policy and not discover_settings:
        raise typer.BadParameter("give at least one --policy to evaluate, or --discover")
    try:
        data = read_log(log, limit=limit, progress=progress)
    except (LogFormatError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    skipped = ", ".join(f"{v} {k}" for k, v in data.skipped.items())
    typer.echo(
        f"{log}: {data.n:,} logged decisions" + (f" (left out: {skipped})" if skipped else "")
    )
    if discover_settings:
        _run_discovery(
            data, policy, methods, primary, reward_model, interval, alpha, seed, progress, json_out
        )
        return
    candidates = _unique_names([parse_policy(p, data) for p in policy or []])
    try:
        report = counterfactual(
            data,
            candidates,
            methods=methods,
            primary=primary,
            current=current,
            learn=learn,
            reward_model_kind=reward_model,  # type: ignore[arg-type]
            interval=interval,  # type: ignore[arg-type]
            alpha=alpha,
            seed=seed,
            progress=progress,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    show_report(report, log, "evaluation", plot, json_out)


def show_report(
    report: Any, log: Path, kind: str, plot: Path | None, json_out: Path | None
) -> None:
    """Print a report's table, draw its plot (default `<log name>.<kind>.png`), write its JSON."""
    typer.echo(report.table())
    plot_path = plot or Path(f"{log.name.split('.')[0]}.{kind}.png")
    report.plot(plot_path)
    typer.echo(f"plot: {plot_path}")
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
        typer.echo(f"report: {json_out}")


def _run_discovery(
    data: LoggedBandit,
    policy: list[str] | None,
    methods: list[str],
    primary: str | None,
    reward_model: str,
    interval: str,
    alpha: float,
    seed: int,
    progress: bool,
    json_out: Path | None,
) -> None:
    if policy and len(policy) > 1:
        raise typer.BadParameter("with --discover, give at most one --policy: the search's start")
    base = None
    if policy:
        spec, _ = _load_spec(_NAMED.sub(r"\2", policy[0]))
        base = spec.get("policy", spec) if isinstance(spec, dict) else None
        if not isinstance(base, dict):
            raise typer.BadParameter(f"--policy {policy[0]!r} must be a VW policy config")
    try:
        found = discover(
            data,
            base,
            methods=methods,
            primary=primary,
            reward_model_kind=reward_model,  # type: ignore[arg-type]
            interval=interval,  # type: ignore[arg-type]
            alpha=alpha,
            seed=seed,
            progress=progress,
        )
    except (ValueError, ValidationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(found.table())
    if found.recommended_config is not None:
        dumped = found.recommended_config.model_dump(mode="json", by_alias=True)
        policy_config = dumped.get("policy") or dumped
        typer.echo("recommended policy config:\n" + yaml.safe_dump(policy_config, sort_keys=False))
    if json_out is not None:
        json_out.write_text(json.dumps(found.to_dict(), indent=2))
        typer.echo(f"report: {json_out}")
