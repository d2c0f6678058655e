"""`banditrec evaluate` on a slate log: cascade IPS / DR per target policy (docs/slates.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import typer

from ..replay.readers import LogFormatError
from ..replay.slate_replay import evaluate_slates, read_slates, table, to_dict
from ..replay.slates import METHODS


def evaluate_slate_log(
    log: Path,
    candidates: Sequence[tuple[str, object]],
    estimators: Sequence[str] | None,
    *,
    learn: bool,
    alpha: float,
    limit: int | None,
    json_out: Path | None,
) -> None:
    methods = list(estimators or ["cascade_ips", "cascade_dr"])
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise typer.BadParameter(
            f"unknown slate estimator(s) {unknown}; choose from {list(METHODS)}"
        )
    try:
        records = read_slates(log, limit)
    except (LogFormatError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    skipped = ", ".join(f"{v} {k}" for k, v in records.skipped.items())
    typer.echo(f"{log}: a slate log" + (f" (left out: {skipped})" if skipped else ""))
    results = evaluate_slates(records, candidates, methods, learn=learn, alpha=alpha)  # type: ignore[arg-type]
    typer.echo(table(records, results))
    if json_out is not None:
        json_out.write_text(json.dumps(to_dict(records, results), indent=2))
        typer.echo(f"report: {json_out}")
