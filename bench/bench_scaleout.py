"""Scale-out: decisions/s of the service on a one-node vs a two-node Ray cluster.

    python bench/bench_scaleout.py [--duration 10] [--connections 16] [--cpus-per-node 1] [--rounds 2]

Each layout is a Ray cluster of its own started with `ray start` on this machine (a head,
and for two nodes a worker, each with --cpus-per-node CPUs), the application deployed from
the Serve config file with one ingress replica per node (`max_replicas_per_node: 1`), a
3-master Redis Cluster behind, HAProxy on the head. Load: single decisions of the example
`channel` app over HTTP at --connections connections (`wrk` when installed, else Python),
after a warm-up. Printed: decisions/s, p50/p99 and errors per layout, and the ratio; also
one node with the CPUs and replicas of both, for reference.

On one machine the nodes share its cores: a second node adds capacity only if the first
replica was not already using every core there is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from tests.plugins.ray_cluster import example_request
from tests.plugins.ray_nodes import LocalRayCluster
from tests.plugins.redis_cluster import redis_cluster

from banditrec.eventlog.server import free_port
from banditrec.serving.runner import wait_ready
from banditrec.serving.settings import load_settings
from bench_serve import load

APP = "channel"


def layout(
    nodes: int, cpus: int, replicas: int, args: argparse.Namespace, root: Path, redis_url: str
) -> dict:
    settings = load_settings(None)
    settings.apps = [a for a in settings.apps if a.name == APP]
    apps = root / f"apps-{nodes}.yaml"
    apps.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    with LocalRayCluster() as cluster:
        cluster.add_node("head", cpus, head=True)
        for k in range(1, nodes):
            cluster.add_node(f"worker{k}", cpus)
        port = free_port()
        config = cluster.serve_config(
            root / f"serve-{nodes}.yaml",
            port,
            {"config": str(apps), "redis_url": redis_url, "open_access": True},
            num_replicas=replicas,
            max_replicas_per_node=-(-replicas // nodes),
        )
        cluster.deploy(config)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout_s=300)
        body = json.dumps(example_request(APP, 1)).encode()
        target = f"{url}/v1/apps/{APP}/decisions"
        headers = {"Content-Type": "application/json"}
        load(target, body, headers, args.connections, 3.0, args.loader)  # warm-up
        return load(target, body, headers, args.connections, args.duration, args.loader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--rounds", type=int, default=2, help="every other round in reverse")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    c = args.cpus_per_node
    # (nodes, CPUs per node, ingress replicas): one node, two nodes, and for reference one
    # node with the CPUs and replicas of both (what the second node adds is a replica).
    layouts = [(1, c, 1), (2, c, 2), (1, 2 * c, 2)]
    rps: dict[tuple[int, int, int], list[float]] = {lay: [] for lay in layouts}
    with redis_cluster(root) as redis_url:
        for k in range(args.rounds):
            for nodes, cpus, replicas in layouts if k % 2 == 0 else layouts[::-1]:
                r = layout(nodes, cpus, replicas, args, root, redis_url)
                rps[nodes, cpus, replicas].append(r["rps"])
                print(
                    f"round {k + 1}: {nodes} node(s) x {cpus} CPU, {replicas} replica(s): "
                    f"{r['rps']:.0f} decisions/s, p50 {r['p50_ms']:.1f} ms, "
                    f"p99 {r['p99_ms']:.1f} ms, errors {r['errors']}",
                    flush=True,
                )
    one, two = (sum(rps[lay]) / len(rps[lay]) for lay in layouts[:2])
    print(f"mean decisions/s: one node {one:.0f}, two nodes {two:.0f}; ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
