"""The `banditrec` command; each subcommand lives in its own module of this package."""

import typer

app = typer.Typer(
    name="banditrec",
    help="banditrec: a self-hosted decision service for personalization.",
    no_args_is_help=True,
    add_completion=False,
)
