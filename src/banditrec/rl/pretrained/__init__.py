"""Trained modules shipped with the package (small .npz files, see policies/rl_module.py).

`JOURNEY_PPO`: PPO on `banditrec/EngagementJourney-v0` (seed 0, 64×64 tanh network), the
policy of docs/rl.md's figures; `bench/bench_rl.py` retrains it.
"""

from pathlib import Path

JOURNEY_PPO = Path(__file__).with_name("engagement_journey_ppo.npz")
