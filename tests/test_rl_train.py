"""Training with RLlib, briefly: the CLI trains, checkpoints, exports and plots; a seed
reproduces a run. (The acceptance margin is shown by bench/bench_rl.py, not here.)"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from banditrec.cli import app
from banditrec.policies.rl_module import read_module
from banditrec.rl.evaluate import rl_engine
from banditrec.rl.train import TrainSettings, train

TINY = ["--train-batch-size", "400", "--hidden", "16,16", "--eval-episodes", "100"]


def _weights(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files if k.startswith("w:")}


@pytest.fixture(scope="module")
def trained(ray_serve, tmp_path_factory):  # Ray is shared with the serving tests
    out = tmp_path_factory.mktemp("rl-train")
    args = ["train-rl", "--iterations", "2", "--seed", "3", "--out", str(out), *TINY]
    result = CliRunner().invoke(
        app, [*args, "--checkpoint-every", "1", "--eval-every", "1", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_train_rl_writes_module_checkpoints_history_and_curve(trained) -> None:
    out, output = trained
    assert "true value of the final policy" in output
    history = json.loads((out / "history.json").read_text())
    assert [h["iteration"] for h in history] == [1, 2]
    assert history[-1]["env_steps"] >= 800 and history[-1]["true_value"] is not None
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for it in (1, 2):
        checkpoint = out / "checkpoints" / f"iter_{it:06d}"
        assert (checkpoint / "rllib_checkpoint.json").exists()
        assert (checkpoint / "policy.npz").exists()
    module = read_module(out / "policy.npz")
    assert module.card.training["seed"] == 3 and module.card.network["fcnet_hiddens"] == [16, 16]
    # what was trained serves: an RL app decides on it
    engine = rl_engine(str(out / "policy.npz"))
    pmf = engine.policy.distribution(np.zeros((1, len(module.card.feature_names)), np.float32))  # type: ignore[attr-defined]
    assert pmf.shape == (1, len(module.card.action_ids)) and np.isclose(pmf.sum(), 1.0)


def test_the_same_seed_reproduces_the_run(trained, tmp_path) -> None:
    out, _ = trained
    settings = TrainSettings(  # the same run, without the evaluations in between
        iterations=2,
        seed=3,
        out=tmp_path,
        train_batch_size=400,
        hidden=[16, 16],
        eval_episodes=0,
    )
    again = train(settings, progress=False)
    first = _weights((out / "policy.npz").read_bytes())
    second = _weights(again.policy_path.read_bytes())
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_bad_settings_are_refused(ray_serve, tmp_path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["train-rl", "--algo", "a3c", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "algo" in r.output
    r = runner.invoke(
        app, ["train-rl", "--env", "banditrec/Content-v0", "--out", str(tmp_path), "--no-progress"]
    )
    assert r.exit_code != 0 and "flat Box observation" in " ".join(
        r.output.replace("│", " ").split()
    )
