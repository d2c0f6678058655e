"""The service's configuration file (`apps.yaml`): the apps, the API keys, the HTTP limits.

One pydantic model validates the file, so a typo in a policy or a key record fails at
start-up with the path of the field, not at the first request.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import AppConfig
from .auth import ApiKeyRecord

EXAMPLE_APPS = "examples/apps.yaml"


class HttpLimits(BaseModel):
    """Limits of the HTTP layer; per-app request limits (actions, features) live in AppConfig."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest request body accepted.")
    max_batch: int = Field(1000, ge=1, description="Most decisions or rewards in one request.")


class LearnerOptions(BaseModel):
    """How the learner pool joins and learns (apps.yaml `learners:`, `banditrec serve
    --publish-every`, or `args.learners` of a Serve config file)."""

    model_config = ConfigDict(extra="forbid")

    publish_every_s: float = Field(
        0.1,
        gt=0,
        description="Publish a model at most this long after it learned something new: how "
        "soon replicas serve what was learned. The first event after a quiet spell is "
        "published at once.",
    )
    publish_every_n: int = Field(20_000, ge=1, description="Publish after this many events.")
    join_interval_s: float = Field(
        0.05, gt=0, description="How often the joiner looks for due decisions while busy."
    )
    discover_interval_s: float = Field(1.0, gt=0, description="How often apps are discovered.")


class ServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apps: list[AppConfig] = Field(default_factory=list)
    api_keys: list[ApiKeyRecord] = Field(
        default_factory=list, description="Hashed API keys, as `banditrec keys create` writes them."
    )
    keys_file: Path | None = Field(
        None,
        description="A YAML file of more hashed keys; re-read by every replica when it changes.",
    )
    http: HttpLimits = Field(default_factory=HttpLimits)
    learners: LearnerOptions = Field(default_factory=LearnerOptions)

    @model_validator(mode="after")
    def _unique_apps(self) -> ServiceSettings:
        names = [a.name for a in self.apps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"app names must be unique; repeated: {duplicates}")
        return self


def load_settings(path: Path | str | None = None) -> ServiceSettings:
    """The settings in `path`, or the example apps shipped with the package when None."""
    if path is None:
        text = resources.files("banditrec").joinpath(EXAMPLE_APPS).read_text()
        base = Path.cwd()
    else:
        path = Path(path)
        text = path.read_text()
        base = path.parent
    data: Any = yaml.safe_load(text) or {}
    settings = ServiceSettings.model_validate(data)
    if settings.keys_file is not None and not settings.keys_file.is_absolute():
        settings.keys_file = (base / settings.keys_file).resolve()
    return settings
