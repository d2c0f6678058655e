"""`banditrec export`: an app's joined events as DSJson lines (for `vw --dsjson`, replay, OPE)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import app

if TYPE_CHECKING:
    from ..eventlog import EventLog


@app.command("export")
def export_command(
    app_name: Annotated[str, typer.Option("--app", help="The app whose joined events to export.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="DSJson file to write.")],
    since: Annotated[
        str | None, typer.Option(help="Joined at or after this time (ISO 8601, UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Joined before this time (ISO 8601).")] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="REDIS_URL",
            help="Redis to read; without one, the embedded server's data in --data-dir.",
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Where `banditrec serve` keeps its embedded Redis data.")
    ] = Path(".banditrec"),
    quarantine: Annotated[
        bool,
        typer.Option(
            "--quarantine",
            help="Write the events the learner quarantined instead (JSON lines: id, event_id, "
            "slot, why, quarantined_at, record).",
        ),
    ] = False,
) -> None:
    """Write the joined decisions of an app (in a join-time range) to a DSJson file."""
    from tqdm import tqdm

    from ..eventlog.export import count_joined, export_joined, to_unix

    try:
        to_unix(since), to_unix(until)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with event_log(redis_url, data_dir) as log:
        if quarantine:
            n = log.quarantine.export(app_name, out)
            typer.echo(f"{n} quarantined events of {app_name!r} written to {out}")
            return
        if log.configs.get(app_name) is None and count_joined(log, app_name) == 0:
            known = ", ".join(log.configs.list_apps()) or "none"
            raise typer.BadParameter(
                f"no app {app_name!r} in Redis (apps: {known})", param_hint="--app"
            )
        with tqdm(
            total=count_joined(log, app_name), unit="event", desc=f"export {app_name}"
        ) as bar:
            n = export_joined(log, app_name, out, since, until, progress=bar.update)
        typer.echo(f"{n} joined events of {app_name!r} written to {out}")


@contextmanager
def event_log(
    redis_url: str | None, data_dir: Path, spool_dir: Path | None = None
) -> Iterator[EventLog]:
    """The event log at `redis_url`, or else the embedded Redis `banditrec serve` keeps in
    `data_dir` (the running server, or one started for the command on its data)."""
    from ..eventlog import EmbeddedRedis, connect

    server = None
    if redis_url is None:
        redis_dir = data_dir / "redis"
        redis_url = EmbeddedRedis.running_url(redis_dir)  # `banditrec serve` is running
        if redis_url is None:
            if not (redis_dir / "appendonly.aof").exists():
                raise typer.BadParameter(
                    f"no Redis URL and no embedded Redis data in {redis_dir}: pass --redis-url "
                    "(or set REDIS_URL) or the --data-dir `banditrec serve` used",
                    param_hint="--redis-url",
                )
            server = EmbeddedRedis(redis_dir).start()
            redis_url = server.url
    from ..eventlog import EventLog

    log = EventLog(connect(redis_url), spool_dir=spool_dir)
    try:
        yield log
    finally:
        log.close()
        if server is not None:
            server.stop()
