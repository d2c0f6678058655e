"""Reinforcement learning for sequential decisions (journeys): train, serve, evaluate offline.

- the served side lives with the decision core and the policies, and this package builds
  on it (never the other way round): `decision/journey.py`, how the journey state and the
  episode travel in a request's context; `policies/rl_module.py`, a trained RLlib module as
  bytes (.npz, no pickle); `policies/rl.py`, the policy an RL app serves;
- train.py: `train(TrainSettings)` with RLlib (PPO / DQN) in a simulator (needs the `rl` extra);
- evaluate.py: engines as journey policies, true values by Monte Carlo;
- trajectories.py, targets.py, ope.py, fqe.py: sequential off-policy evaluation over logged
  trajectories;
- collect.py: log a behaviour policy's journeys through the engine, as the service logs them;
- compare.py: RL vs the best bandit vs a rule, by truth and by OPE;
- pretrained/: a small trained module for the journey env (`JOURNEY_PPO`).

Importing this package does not import torch or RLlib; loading or training a module does.
"""
