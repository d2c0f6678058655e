"""Whether a config's policies can be built, asked before the config is stored.

A VW workspace is built in a child process: VW may abort, crash or try to allocate
without bound on arguments it does not take (`-b 60` asks for 2^60 weights), and that must
cost a child, not the replica deciding. The child is limited in memory and time, builds the
workspace, then predicts and learns one example; VW's own message comes back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from ..config import AppConfig
from ..policy_config import PolicyConfig, VWPolicyConfig

_CHILD = textwrap.dedent(
    """
    import resource, sys
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import json
    import vowpal_wabbit_next as vw
    try:
        w = vw.Workspace(json.loads(sys.argv[1]))
        examples = vw.JsonFormatParser(w).parse_json(
            '{"u": {"f": 1}, "_multi": [{"a": {"x": 1}}, {"a": {"y": 1}}]}'
        )
        w.predict_one(examples)
        examples[0].set_label(vw.CBLabel(label=(0.0, 0.5)))
        w.learn_one(examples)
    except BaseException as exc:
        sys.stderr.write(str(exc) or type(exc).__name__)
        sys.exit(3)
    """
)
MEMORY_LIMIT = 4 << 30  # bytes of address space for the child: a 2^28-weight model fits
TIMEOUT_S = 60.0


def vw_args_problem(args: list[str]) -> str | None:
    """VW's message when it cannot build a workspace with `args` (None when it can)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(args), str(MEMORY_LIMIT)],
            capture_output=True,
            timeout=TIMEOUT_S,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"VW did not build a workspace within {TIMEOUT_S:.0f} s"
    if done.returncode == 0:
        return None
    message = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode == 3 and message:
        return message[-1]
    if done.returncode < 0:
        return f"VW crashed ({signal.Signals(-done.returncode).name}) on these arguments"
    return message[-1] if message else f"VW exited with status {done.returncode}"


def config_problems(config: AppConfig, current: AppConfig | None = None) -> list[tuple[str, str]]:
    """(field, message) for each policy of `config` that cannot be built; [] when all can.

    VW policies are tried in a child first (those whose VW arguments differ from the
    `current` config's, which is serving); then the whole engine is built here."""
    from ..decision.engine import DecisionEngine
    from ..experiments.arms import arm_configs

    serving = current.slot_policies() if current is not None else {}
    serving_arms = arm_configs(current) if current is not None else {}
    checked: list[tuple[str, PolicyConfig, PolicyConfig | None]] = [
        ("policy" if slot is None else f"slots[{slot}].policy", policy, serving.get(slot))
        for slot, policy in config.slot_policies().items()
    ]
    checked += [  # an experiment's `policy` arms: the same all-or-nothing check
        (f"experiment.arms[{name}].policy", policy, serving_arms.get(name))
        for name, policy in arm_configs(config).items()
    ]
    problems = []
    for where, policy, before in checked:
        if not isinstance(policy, VWPolicyConfig):
            continue
        if isinstance(before, VWPolicyConfig) and before.vw_args() == policy.vw_args():
            continue
        problem = vw_args_problem(policy.vw_args())
        if problem is not None:
            problems.append((where, f"VW cannot run with {policy.vw_args()}: {problem}"))
    if not problems:
        try:
            DecisionEngine(config)
        except Exception as exc:  # numpy policies, RL checkpoints: their own message
            problems.append(("policy", f"{type(exc).__name__}: {exc}"))
    return problems
