"""`banditrec import-personalizer`: Azure Personalizer's exported logs into banditrec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .export import event_log


@app.command("import-personalizer")
def import_personalizer_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="Personalizer's DSJson log files, as exported to storage (.gz ok)."),
    ],
    app_name: Annotated[str, typer.Option("--app", help="The banditrec app they belong to.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write banditrec's DSJson here (for `banditrec evaluate`)."
        ),
    ] = None,
    load: Annotated[
        bool,
        typer.Option(
            help="Append the events to the app's joined stream in Redis, where its learner "
            "learns them (a warm start) and `banditrec export` finds them."
        ),
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="REDIS_URL",
            help="Redis to load into; without one, the embedded server's data in --data-dir.",
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Where `banditrec serve` keeps its embedded Redis data.")
    ] = Path(".banditrec"),
) -> None:
    """Convert Personalizer's logs to banditrec's joined records: a file, the app's stream, or both."""
    from ..personalizer.logs import (
        PersonalizerLogError,
        load_joined,
        read_personalizer_log,
        write_records,
    )

    if out is None and not load:
        raise typer.BadParameter("say where the events go: --out FILE, --load, or both")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)}")
    skipped: dict[str, int] = {}
    try:
        records = list(read_personalizer_log(files, app_name, skipped))
    except PersonalizerLogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    events = len({r["_banditrec"]["event_id"] for r in records})
    left_out = ", ".join(f"{n} {why}" for why, n in skipped.items())
    typer.echo(
        f"{events} Personalizer events ({len(records)} records)"
        + (f"; left out: {left_out}" if left_out else "")
    )
    if out is not None:
        write_records(records, out)
        typer.echo(f"written to {out}")
    if load:
        with event_log(redis_url, data_dir) as log:
            try:
                n = load_joined(log, app_name, records)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--app") from None
        typer.echo(f"{n} records appended to the joined stream of {app_name!r}")
