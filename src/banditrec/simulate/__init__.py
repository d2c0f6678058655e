"""The simulation harness: run policies online in the `banditrec/…` envs, with ground truth.

    from banditrec.simulate import simulate, compare
    result = simulate("banditrec/Content-v0", {"kind": "vw", "interactions": ["ut"]}, steps=10_000, seed=1)
    result.summary()            # reward, regret vs oracle and uniform, share of the oracle
    comparison = compare("banditrec/Content-v0", {"eps": {...}, "squarecb": {...}}, steps=10_000, out_dir="runs/x")
    print(comparison.table())   # and runs/x/comparison.png, runs/x/summary.json

The same runs from the shell: `banditrec simulate --env banditrec/Content-v0 --policy a.yaml --policy uniform`.
"""

from .harness import compare, make_env, simulate
from .plot import moving_average, plot_results
from .results import Comparison, SimulationResult
from .specs import PolicySpec, PolicySpecError, load_policy_specs, parse_policy_specs, policy_spec

__all__ = [
    "Comparison",
    "PolicySpec",
    "PolicySpecError",
    "SimulationResult",
    "compare",
    "load_policy_specs",
    "make_env",
    "moving_average",
    "parse_policy_specs",
    "plot_results",
    "policy_spec",
    "simulate",
]
