"""Named policy configurations for simulation runs, from files, inline JSON/YAML or Python.

Accepted shapes (in a file, inline, or as Python objects):

- a policy config: `{"kind": "vw", "explorer": {...}}`, optionally with `"name"` and app
  settings next to it (`min_probability`, `mode`, `seed`);
- an app config: `{"name": "eps", "policy": {...}, "min_probability": 0.01}`;
- a kind name: `"uniform"`, `"vw"`, `"linucb"`;
- several at once: a list of any of the above, a mapping `{name: config}`, or
  `{"policies": <list or mapping>}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..config import APP_NAME_PATTERN, AppConfig
from ..policy_config import PolicyConfig, VWPolicyConfig

_POLICY_ADAPTER: TypeAdapter[PolicyConfig] = TypeAdapter(PolicyConfig)
_APP_KEYS = frozenset(AppConfig.model_fields) - {"name", "policy", "slots"}


class PolicySpec(BaseModel):
    """A policy to simulate: its display name and the app config it is served under."""

    model_config = ConfigDict(frozen=True)

    name: str
    app: AppConfig


class PolicySpecError(ValueError):
    """A policy configuration that cannot be used; the message says what to fix."""


def default_name(policy: PolicyConfig) -> str:
    if isinstance(policy, VWPolicyConfig):
        explorer = policy.explorer.model_dump(by_alias=True, exclude={"type"})
        main = next(iter(explorer.values()), None)
        return f"vw-{policy.explorer.type}" + (
            f"-{main}" if isinstance(main, int | float) and main is not True else ""
        )
    return policy.kind


def _app_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:64]
    return cleaned if re.match(APP_NAME_PATTERN, cleaned) else "simulation"


def policy_spec(value: Any, name: str | None = None) -> PolicySpec:
    """One spec from a PolicySpec, AppConfig, policy config, dict or kind name."""
    if isinstance(value, PolicySpec):
        return value if name is None else PolicySpec(name=name, app=value.app)
    try:
        if isinstance(value, AppConfig):
            app = value
            name = name or (value.name if value.name != "default" else default_name(value.policy))
        elif isinstance(value, BaseModel):  # a policy config
            app = AppConfig(policy=_POLICY_ADAPTER.validate_python(value.model_dump(by_alias=True)))
            name = name or default_name(app.policy)
        elif isinstance(value, str):
            app = AppConfig(policy=_POLICY_ADAPTER.validate_python({"kind": value}))
            name = name or default_name(app.policy)
        elif isinstance(value, Mapping):
            data = dict(value)
            name = name or data.pop("name", None)
            data.pop("name", None)
            if "policy" in data or "slots" in data:
                app = AppConfig.model_validate(data)
            else:
                app_fields = {k: data.pop(k) for k in list(data) if k in _APP_KEYS}
                app = AppConfig.model_validate({**app_fields, "policy": data})
            name = name or default_name(app.policy)
        else:
            raise PolicySpecError(
                f"a policy must be a config mapping or a kind name, got {type(value).__name__}"
            )
    except ValidationError as e:
        raise PolicySpecError(f"invalid policy config{f' {name!r}' if name else ''}: {e}") from None
    if app.slots is not None:
        raise PolicySpecError(
            f"policy {name!r}: simulators present one decision per step; use a single-slot app"
        )
    return PolicySpec(name=str(name), app=app.model_copy(update={"name": _app_name(str(name))}))


def parse_policy_specs(data: Any) -> list[PolicySpec]:
    """Every spec in a parsed document (see the module docstring for the shapes)."""
    if isinstance(data, Mapping) and "policies" in data:
        data = data["policies"]
    if isinstance(data, list | tuple):
        specs = [policy_spec(item) for item in data]
    elif isinstance(data, Mapping) and not ({"kind", "policy", "slots"} & set(data)):
        specs = [policy_spec(cfg, name=str(n)) for n, cfg in data.items()]
    else:
        specs = [policy_spec(data)]
    if not specs:
        raise PolicySpecError("no policy given")
    return unique_names(specs)


def unique_names(specs: list[PolicySpec]) -> list[PolicySpec]:
    """Suffix repeated names (-2, -3, …) so every run is told apart in plots and logs."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        count = seen.get(spec.name, 0) + 1
        seen[spec.name] = count
        out.append(spec if count == 1 else policy_spec(spec, name=f"{spec.name}-{count}"))
    return out


def load_policy_specs(arg: str) -> list[PolicySpec]:
    """Specs from a command-line argument: a YAML/JSON file path, inline JSON/YAML, or a kind name."""
    path = Path(arg)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.is_file():
        if not path.is_file():
            raise PolicySpecError(f"policy file {arg!r} does not exist")
        text = path.read_text()
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as e:
            raise PolicySpecError(
                f"policy file {arg!r} is not valid {path.suffix[1:].upper()}: {e}"
            ) from None
        return parse_policy_specs(data)
    stripped = arg.strip()
    if stripped[:1] in ("{", "["):
        try:
            data = yaml.safe_load(stripped)  # YAML flow style is a superset of JSON
        except yaml.YAMLError as e:
            raise PolicySpecError(f"inline policy {arg!r} is not valid JSON: {e}") from None
        return parse_policy_specs(data)
    return [policy_spec(stripped)]
