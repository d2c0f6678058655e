"""`banditrec serve`: the decision service on Ray Serve, from one command."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from .app import app

DEV_KEY_FILE = "admin.key"
# A replica answers on one Python thread, so it uses at most one core: by default `serve`
# runs one per CPU (on 2 cores, two replicas served 30-40% more decisions/s than one, with
# a lower p99). Capped because each replica is a process holding every app's models.
MAX_DEFAULT_REPLICAS = 8


def default_replicas(num_cpus: int | None, address: str | None) -> int:
    """Ingress replicas when --replicas is not given."""
    if address is not None:  # a cluster: its Serve config file says how many, and where
        return 1
    return max(1, min(num_cpus or os.cpu_count() or 1, MAX_DEFAULT_REPLICAS))


def _dev_key(data_dir: Path) -> tuple[str, bool]:
    """The development admin key kept in the data directory (made on first use)."""
    from ..serving.auth import create_key

    path = data_dir / DEV_KEY_FILE
    if path.exists():
        return path.read_text().strip(), False
    key, _ = create_key(["*"], ["admin"], note="development key of `banditrec serve`")
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key, True


@app.command("serve")
def serve_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="apps.yaml; the shipped example apps when omitted."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every one).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (e.g. 'auto') instead of starting Ray here."),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="REDIS_URL", help="Redis to use; without one an embedded redis-server runs."
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Embedded Redis data, the spool and the development key.")
    ] = Path(".banditrec"),
    replicas: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ingress replicas. Default: one per CPU of a locally started Ray, at most "
            f"{MAX_DEFAULT_REPLICAS} (a replica answers on one Python thread: it uses one core); "
            "1 when joining a cluster.",
        ),
    ] = None,
    max_replicas_per_node: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="At most this many ingress replicas on one Ray node (on a cluster: 1 puts "
            "each replica on a node of its own).",
        ),
    ] = None,
    keys_file: Annotated[
        Path | None,
        typer.Option(help="A keys file written by `banditrec keys create` (re-read on change)."),
    ] = None,
    open_access: Annotated[
        bool,
        typer.Option("--open", help="No API keys at all (development on a trusted machine only)."),
    ] = False,
    keep_live_configs: Annotated[
        bool, typer.Option(help="Keep app configs already in Redis (changed live), not the file's.")
    ] = False,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of a locally started Ray.")] = None,
    publish_every: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Seconds between model publishes while learning (apps.yaml `learners: "
            "{publish_every_s}`; default 0.1): how soon replicas serve what was learned.",
        ),
    ] = None,
    default_proxy: Annotated[
        bool,
        typer.Option(help="Serve's default Python proxy instead of HAProxy (slower; to compare)."),
    ] = False,
) -> None:
    """Start Ray (or join --address), Redis, the learners and the HTTP API; serve until Ctrl-C."""
    from ..serving.auth import record_for_key
    from ..serving.runner import LocalService, RunOptions
    from ..serving.settings import load_settings

    settings = load_settings(config)
    if publish_every is not None:
        settings.learners.publish_every_s = publish_every
    if keys_file is not None:
        settings.keys_file = keys_file.resolve()
    has_keys = bool(settings.api_keys) or (
        settings.keys_file is not None and settings.keys_file.exists()
    )
    dev_key = None
    if open_access:
        typer.secho(
            "WARNING: --open: no API keys; anyone who reaches the port can decide, reward and "
            "reconfigure apps.",
            fg=typer.colors.RED,
            err=True,
        )
    elif not has_keys:
        dev_key, fresh = _dev_key(data_dir)
        settings.api_keys.append(record_for_key(dev_key, ["*"], ["admin"], note="development"))
    options = RunOptions(
        settings=settings,
        host=host,
        port=port,
        address=address,
        redis_url=redis_url,
        data_dir=data_dir,
        replicas=replicas or default_replicas(num_cpus, address),
        max_replicas_per_node=max_replicas_per_node,
        open_access=open_access,
        keep_live_configs=keep_live_configs,
        fast_ingress=not default_proxy,
        num_cpus=num_cpus,
    )
    typer.echo(f"starting {len(settings.apps)} apps: {', '.join(a.name for a in settings.apps)}")
    service = LocalService(options).start()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        typer.echo(
            f"Redis: {service.redis_url if service.redis is None else 'embedded, ' + service.redis_url}"
        )
        typer.echo(
            f"ingress: {'Serve default proxy' if default_proxy else 'HAProxy'}, "
            f"{options.replicas} replica{'s' if options.replicas > 1 else ''}"
        )
        if dev_key is not None:
            state = "new" if fresh else "kept"
            typer.echo(
                f"admin API key ({state}, in {data_dir / DEV_KEY_FILE}; for every app):\n  {dev_key}\n"
                f"  export BANDITREC_API_KEY=$(cat {data_dir / DEV_KEY_FILE})"
            )
        typer.secho(
            f"banditrec is serving at {service.url}  (API docs: {service.url}/docs, "
            f"metrics: {service.url}/metrics)",
            fg=typer.colors.GREEN,
        )
        stopping.wait()
    finally:
        typer.echo("stopping")
        service.stop()
