"""`banditrec keys create | list | revoke`: API keys in a keys file, stored hashed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app

keys_app = typer.Typer(
    help="API keys: per app, with scopes (decide, reward, admin).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

KeysFile = Annotated[
    Path, typer.Option("--keys-file", envvar="BANDITREC_KEYS_FILE", help="The keys file.")
]
DEFAULT_KEYS_FILE = Path("keys.yaml")


@keys_app.command("create")
def create(
    apps: Annotated[
        list[str], typer.Option("--app", help="An app the key is for ('*': every app).")
    ],
    scopes: Annotated[
        list[str], typer.Option("--scope", help="decide, reward or admin (all three).")
    ],
    keys_file: KeysFile = DEFAULT_KEYS_FILE,
    note: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Make a key, store its hash in the keys file and print the key (shown only this once)."""
    from ..serving.auth import SCOPES, append_key, create_key

    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise typer.BadParameter(
            f"unknown scope(s) {unknown}; use {list(SCOPES)}", param_hint="--scope"
        )
    key, record = create_key(apps, scopes, note=note)  # type: ignore[arg-type]
    append_key(keys_file, record)
    typer.echo(
        f"key {record.id} for {', '.join(record.apps)} ({', '.join(record.scopes)}), stored hashed in {keys_file}"
    )
    typer.echo("the key (it is not stored and will not be shown again):")
    typer.echo(key)


@keys_app.command("list")
def list_keys(keys_file: KeysFile = DEFAULT_KEYS_FILE) -> None:
    """The keys in the keys file: id, apps, scopes (never the keys)."""
    from ..serving.auth import read_keys_file

    for r in read_keys_file(keys_file):
        typer.echo(f"{r.id}  apps={','.join(r.apps)}  scopes={','.join(r.scopes)}  {r.note or ''}")


@keys_app.command("revoke")
def revoke(key_id: str, keys_file: KeysFile = DEFAULT_KEYS_FILE) -> None:
    """Remove a key from the keys file; replicas stop accepting it within a second or two."""
    from ..serving.auth import read_keys_file, write_keys_file

    records = read_keys_file(keys_file)
    kept = [r for r in records if r.id != key_id]
    if len(kept) == len(records):
        raise typer.BadParameter(f"no key {key_id!r} in {keys_file}", param_hint="KEY_ID")
    write_keys_file(keys_file, kept)
    typer.echo(f"revoked {key_id}")
