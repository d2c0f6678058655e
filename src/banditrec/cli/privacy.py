"""`banditrec privacy erase | rotate-key | retention | audit`: an app's privacy, from the shell.

Each command talks to Redis (`--redis-url` / REDIS_URL, or the embedded server's data in
--data-dir, as `banditrec export` does) and writes its action to the app's audit trail
(actor `cli`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .export import event_log as export_event_log

if TYPE_CHECKING:
    from ..eventlog import EventLog

privacy_app = typer.Typer(
    help="Privacy: erase a data subject, rotate the pseudonym key, retention, the audit trail.",
    no_args_is_help=True,
)
app.add_typer(privacy_app, name="privacy")

AppName = Annotated[str, typer.Option("--app", help="The app.")]
RedisUrl = Annotated[
    str | None,
    typer.Option(envvar="REDIS_URL", help="Redis; without one, the embedded server's data."),
]
DataDir = Annotated[
    Path, typer.Option(help="Where `banditrec serve` keeps its embedded Redis data.")
]
CLI_ACTOR = "cli"


@contextmanager
def event_log(
    redis_url: str | None, data_dir: Path, app_name: str, spool_dir: Path | None = None
) -> Iterator[EventLog]:
    """The event log of a running (or stopped embedded) server, with the app checked."""
    with export_event_log(redis_url, data_dir, spool_dir) as log:
        if log.configs.get(app_name) is None:
            known = ", ".join(log.configs.list_apps()) or "none"
            raise typer.BadParameter(f"no app {app_name!r} (apps: {known})", param_hint="--app")
        yield log


@privacy_app.command("erase")
def erase(
    app_name: AppName,
    subject: Annotated[str, typer.Option(help="The subject's id (raw, or its pseudonym).")],
    spool_dir: Annotated[
        Path | None, typer.Option(help="A spool directory on this machine to erase too.")
    ] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = Path(".banditrec"),
) -> None:
    """Delete one data subject's records (pending, joined, spool) and print the receipt."""
    from ..privacy.erasure import erase_subject
    from ..serving.audit import record_action

    with event_log(redis_url, data_dir, app_name, spool_dir) as log:
        receipt = erase_subject(log, app_name, subject).as_dict()
        record_action(log.client, app_name, "erasure", CLI_ACTOR, receipt)
    typer.echo(json.dumps(receipt, indent=2))


@privacy_app.command("rotate-key")
def rotate_key(
    app_name: AppName, redis_url: RedisUrl = None, data_dir: DataDir = Path(".banditrec")
) -> None:
    """Make a new pseudonym key current (replicas use it within a second)."""
    from ..privacy.keys import PseudonymKeys
    from ..serving.audit import record_action

    with event_log(redis_url, data_dir, app_name) as log:
        version = PseudonymKeys(log.client).rotate(app_name)
        record_action(log.client, app_name, "key_rotation", CLI_ACTOR, {"version": version})
    typer.echo(f"{app_name}: pseudonym key version {version} is current")


@privacy_app.command("retention")
def retention(
    app_name: AppName,
    max_events: Annotated[int | None, typer.Option(min=1, help="Joined events kept.")] = None,
    max_age_days: Annotated[
        float | None, typer.Option(min=0.001, help="Days joined events are kept.")
    ] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = Path(".banditrec"),
) -> None:
    """Show the app's retention, or set it (stored in its config, as a PATCH would)."""
    from ..privacy.retention import DAY_S, apply_retention
    from ..serving.audit import record_action

    with event_log(redis_url, data_dir, app_name) as log:
        if max_events is not None or max_age_days is not None:
            change = {
                k: v
                for k, v in (("max_events", max_events), ("max_age_days", max_age_days))
                if v is not None
            }

            def patched(config):
                r = config.privacy.retention.model_copy(update=change)
                privacy = config.privacy.model_copy(update={"retention": r})
                return config.model_copy(update={"privacy": privacy})

            config = log.configs.update(app_name, patched)
            apply_retention(log, config)
            record_action(log.client, app_name, "retention", CLI_ACTOR, change)
        n, s = log.configs.retention(app_name)
    typer.echo(f"{app_name}: keeps at most {n} joined events, for {s / DAY_S:g} days")


@privacy_app.command("audit")
def audit(
    app_name: AppName,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Entries, newest first.")] = 20,
    action: Annotated[str | None, typer.Option(help="Only this kind of action.")] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = Path(".banditrec"),
) -> None:
    """The app's audit trail: config changes, rollbacks, key rotations, erasures, retention."""
    from ..serving.audit import ACTIONS, read_actions

    if action is not None and action not in ACTIONS:
        raise typer.BadParameter(f"one of {list(ACTIONS)}", param_hint="--action")
    with event_log(redis_url, data_dir, app_name) as log:
        entries = read_actions(log.client, app_name, limit=limit, action=action)
    for e in entries:
        typer.echo(json.dumps(e))
