"""A trained RLlib module as one file of bytes: its card (what it acts on) and its weights.

The file is a numpy `.npz` (never a pickle): `card` holds a JSON description — the
algorithm, the network settings, the names of the observation features and of the actions
— `obs_low` / `obs_high` the observation bounds, and `w:<parameter>` the inference weights
of the torch module. Loading rebuilds RLlib's own default module for that algorithm from
the card and sets its weights, so the network that serves is the one RLlib trained, and
the bytes can travel through the model registry like any other policy's model.

torch and RLlib are imported only when a module is exported or loaded.
"""

from __future__ import annotations

import importlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT = "banditrec.rl-module/1"
Algo = Literal["PPO", "DQN"]

# Only RLlib's own default modules are rebuilt from a card: a card cannot name arbitrary code.
_MODULE_CLASSES: dict[str, str] = {
    "PPO": "ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module:DefaultPPOTorchRLModule",
    "DQN": "ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module:DefaultDQNTorchRLModule",
}
_WEIGHT_PREFIX = "w:"


class ModuleFormatError(ValueError):
    """Bytes or a file that are not an exported module; the message says what is wrong."""


class ModuleCard(BaseModel):
    """What an exported module acts on and how it was trained."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["banditrec.rl-module/1"] = FORMAT
    algo: Algo
    network: dict[str, Any] = Field(description="RLlib model_config of the module")
    feature_names: list[str] = Field(min_length=1)
    action_ids: list[str] = Field(min_length=2)
    env_id: str | None = None
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> ModuleCard:
        for name, values in (
            ("feature_names", self.feature_names),
            ("action_ids", self.action_ids),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be unique, got {values}")
        return self


@dataclass(eq=False)
class LoadedModule:
    """An RLlib module ready for inference, with its card and the bytes it came from."""

    card: ModuleCard
    module: Any = field(repr=False)
    data: bytes = field(repr=False)

    @property
    def n_actions(self) -> int:
        return len(self.card.action_ids)

    @property
    def gives_q_values(self) -> bool:
        """DQN modules score actions by Q-value; PPO modules by logits of a distribution."""
        return self.card.algo == "DQN"

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """(n, K) action-distribution inputs (PPO logits, DQN Q-values) for (n, d) observations."""
        import torch
        from ray.rllib.core import Columns

        x = np.asarray(obs, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.card.feature_names):
            raise ValueError(
                f"observations must be (n, {len(self.card.feature_names)}), got {x.shape}"
            )
        with torch.inference_mode():
            batch = {Columns.OBS: torch.from_numpy(x)}
            if self.gives_q_values:
                out = self.module.compute_q_values(batch)["qf_preds"]
            else:
                # The module was put in eval mode once, at load: `forward_inference` would
                # redo that on every call (a third of a small network's inference time).
                out = self.module._forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        return out.numpy().astype(np.float64)


def _module_class(algo: str) -> type:
    module_name, class_name = _MODULE_CLASSES[algo].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def export_module(
    module: Any, card: ModuleCard, obs_low: np.ndarray, obs_high: np.ndarray
) -> bytes:
    """The bytes of a trained torch RLModule (its inference weights) with its card."""
    if _MODULE_CLASSES[card.algo].split(":")[1] != type(module).__name__:
        raise ValueError(
            f"a {card.algo} card needs RLlib's {_MODULE_CLASSES[card.algo]}, got {type(module)}"
        )
    weights = module.get_state(inference_only=True)
    arrays: dict[str, np.ndarray] = {
        "card": np.array(card.model_dump_json()),
        "obs_low": np.asarray(obs_low, dtype=np.float32),
        "obs_high": np.asarray(obs_high, dtype=np.float32),
    }
    for name, value in weights.items():
        arrays[_WEIGHT_PREFIX + name] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_module(data: bytes) -> LoadedModule:
    """Rebuild an exported module; no pickle is read (`allow_pickle=False`)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ModuleFormatError(f"not an exported RL module (.npz): {exc}") from None
    if "card" not in arrays:
        raise ModuleFormatError("not an exported RL module: it has no card")
    try:
        card = ModuleCard.model_validate(json.loads(str(arrays["card"])))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ModuleFormatError(f"the module's card is invalid: {exc}") from None

    import gymnasium as gym
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    low, high = arrays["obs_low"], arrays["obs_high"]
    if low.shape != (len(card.feature_names),) or high.shape != low.shape:
        raise ModuleFormatError(
            f"observation bounds have shape {low.shape}, the card names {len(card.feature_names)} features"
        )
    spec = RLModuleSpec(
        module_class=_module_class(card.algo),
        observation_space=gym.spaces.Box(low, high, dtype=np.float32),
        action_space=gym.spaces.Discrete(len(card.action_ids)),
        inference_only=True,
        model_config=card.network,
    )
    module = _build_quietly(spec)
    weights = {
        k[len(_WEIGHT_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_WEIGHT_PREFIX)
    }
    expected = set(module.state_dict())
    if missing := sorted(expected - weights.keys()):
        raise ModuleFormatError(f"the module's weights lack {missing}")
    try:
        module.set_state(weights)
    except RuntimeError as exc:  # shapes that do not match the card's network
        raise ModuleFormatError(f"the module's weights do not fit its card: {exc}") from None
    module.eval()
    return LoadedModule(card, module, bytes(data))


def _build_quietly(spec: Any) -> Any:
    """Build a module without drawing from torch's or numpy's global generators: its random
    initial weights are overwritten at once, and a module loaded while training (to
    evaluate it) must not change the run that its seed reproduces."""
    import torch

    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        module = spec.build()
    np.random.set_state(numpy_state)
    return module


def read_module(path: str | Path) -> LoadedModule:
    p = Path(path)
    if not p.is_file():
        raise ModuleFormatError(f"no exported RL module at {str(p)!r}")
    return load_module(p.read_bytes())


def write_module(path: str | Path, data: bytes) -> Path:
    """Write module bytes atomically (a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(p)
    return p
