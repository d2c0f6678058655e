"""`PATCH /v1/apps/{app}`: a JSON merge patch (RFC 7396) of the app's config.

`{"policy": {"explorer": {"epsilon": 0.2}}}` changes one number and keeps the rest;
`null` resets a field to its default. The patched config's policy is built (VW in a child
process) before anything is stored: one VW cannot run with is a 422 with VW's message. A patch that switches a policy's `kind` (or an
explorer's `type`) replaces that object whole, since the old one's fields would not fit.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..config import AppConfig
from ..policies.check import config_problems
from .errors import ApiError, invalid

_DISCRIMINATORS = ("kind", "type")
ROLLBACK_FIELD = "rollback_to"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict) or any(
        k in patch and k in target and patch[k] != target[k] for k in _DISCRIMINATORS
    ):
        target = {}
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def patched_config(current: AppConfig, patch: dict[str, Any]) -> AppConfig:
    """The config after the patch, validated; 422 naming the field when it does not hold."""
    if "name" in patch and patch["name"] != current.name:
        raise ApiError(422, "invalid request", [{"loc": "name", "msg": "an app cannot be renamed"}])
    merged = merge_patch(current.model_dump(mode="json", by_alias=True), patch)
    merged["name"] = current.name
    try:
        config = AppConfig.model_validate(merged)
    except ValidationError as exc:
        raise invalid(exc) from None
    # All or nothing: a config whose policy cannot be built is never stored.
    problems = config_problems(config, current)
    if problems:
        raise ApiError(422, "invalid config", [{"loc": loc, "msg": msg} for loc, msg in problems])
    return config
