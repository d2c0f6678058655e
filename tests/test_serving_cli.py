"""`banditrec keys` and the service settings file: keys shown once, stored hashed, usable."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from banditrec.cli import app
from banditrec.serving.auth import KeyRing, read_keys_file
from banditrec.serving.settings import load_settings

runner = CliRunner()


def test_keys_create_prints_the_key_once_and_stores_its_hash(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yaml"
    args = ["keys", "create", "--app", "news", "--scope", "decide", "--scope", "reward"]
    result = runner.invoke(app, [*args, "--keys-file", str(keys_file)])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("brk_")
    assert key.split("_", 2)[2] not in keys_file.read_text()
    assert keys_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    (record,) = read_keys_file(keys_file)
    assert record.apps == ["news"]
    assert record.scopes == ["decide", "reward"]
    assert KeyRing([record]).authorize(key, "news", "reward") == record

    listed = runner.invoke(app, ["keys", "list", "--keys-file", str(keys_file)])
    assert record.id in listed.output
    assert key not in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", record.id, "--keys-file", str(keys_file)])
    assert revoked.exit_code == 0
    assert read_keys_file(keys_file) == []


def test_keys_create_refuses_an_unknown_scope(tmp_path: Path) -> None:
    args = ["keys", "create", "--app", "news", "--scope", "everything"]
    result = runner.invoke(app, [*args, "--keys-file", str(tmp_path / "k.yaml")])
    assert result.exit_code != 0
    assert "unknown scope" in result.output


def test_the_example_apps_load_with_three_apps_and_a_multi_slot_one() -> None:
    settings = load_settings(None)
    names = [a.name for a in settings.apps]
    assert names[:3] == ["content", "channel", "send_time"]
    journey = next(a for a in settings.apps if a.slots)
    assert [s.name for s in journey.slots or []] == ["content", "channel", "send_time"]


def test_a_settings_file_with_a_typo_fails_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(
        "apps:\n  - name: news\n    policy: {kind: vw, explorer: {type: epsilon, epsilon: 7}}\n"
    )
    with pytest.raises(ValueError, match="epsilon"):
        load_settings(path)
    path.write_text("apps:\n  - name: a\n  - name: a\n")
    with pytest.raises(ValueError, match="unique"):
        load_settings(path)


def test_the_serve_config_example_is_a_valid_serve_config() -> None:
    import yaml
    from ray.serve.schema import ServeDeploySchema

    path = Path(__file__).parents[1] / "src/banditrec/examples/serve_config.yaml"
    config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    (application,) = config.applications
    assert application.import_path == "banditrec.serving.deployment:build_app"
    assert {d.name for d in application.deployments} == {"Ingress", "LearnerPool"}


def test_build_app_seeds_the_configs_and_builds_both_deployments(
    tmp_path: Path, redis_url: str
) -> None:
    from ray.serve import Application

    from banditrec.eventlog import EventLog, connect
    from banditrec.serving.deployment import build_app

    name = f"cfg{uuid.uuid4().hex[:10]}"
    path = tmp_path / "apps.yaml"
    path.write_text(f"apps:\n  - name: {name}\n    policy: {{kind: ucb1}}\n")
    log = EventLog(connect(redis_url))
    try:
        built = build_app({"config": str(path), "redis_url": redis_url})
        assert isinstance(built, Application)
        stored = log.configs.get(name)
        assert stored is not None
        assert stored.policy.kind == "ucb1"
        with pytest.raises(ValueError, match="extra"):
            build_app({"config": str(path), "redis_url": redis_url, "surprise": 1})
    finally:
        log.drop_app(name)


def test_serve_runs_one_replica_per_cpu_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from banditrec.cli.serve import MAX_DEFAULT_REPLICAS, default_replicas

    assert default_replicas(2, None) == 2  # --num-cpus 2
    assert default_replicas(64, None) == MAX_DEFAULT_REPLICAS
    assert default_replicas(8, "auto") == 1  # a cluster's Serve config says how many
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert default_replicas(None, None) == 3
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert default_replicas(None, None) == 1
