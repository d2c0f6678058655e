"""Business rules of a slate (a ranked list), per app and per request.

The rules decide which candidates each position may take before any exploration; the
engine then draws each position from the policy's pmf over exactly those candidates, so
the probability it logs for a position is the one it drew with, whatever the rules did.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SlateRules(BaseModel):
    """Exclude ids, pin ids to positions, allowed sets per position, at most m per group.

    Positions are 1-based. `groups` maps an action id to its group (a creator, a
    category, a partner); `max_per_group` caps how many of one group a slate holds,
    either one cap for every group or a cap per group name ("*": every group not named).
    """

    model_config = ConfigDict(extra="forbid")

    exclude: list[str] = Field(default_factory=list, description="Ids never shown.")
    pin: dict[str, int] = Field(
        default_factory=dict, description="Action id → the position (1-based) it must take."
    )
    allowed: dict[int, list[str]] = Field(
        default_factory=dict,
        description="Position (1-based) → the only ids that position may take.",
    )
    groups: dict[str, str] = Field(default_factory=dict, description="Action id → its group.")
    item_age_seconds: dict[str, float] = Field(
        default_factory=dict, description="Action id → its age, for the app's cold-start boost."
    )
    max_per_group: int | dict[str, int] | None = Field(
        None, description="At most this many items of one group (or per group name) in a slate."
    )

    @field_validator("pin")
    @classmethod
    def _distinct_positions(cls, v: dict[str, int]) -> dict[str, int]:
        for action_id, position in v.items():
            if position < 1:
                raise ValueError(f"pin[{action_id!r}]: position {position} must be ≥ 1")
        positions = sorted(v.values())
        if len(set(positions)) != len(positions):
            raise ValueError(f"two ids are pinned to one position: {v}")
        return v

    @field_validator("allowed")
    @classmethod
    def _positive_positions(cls, v: dict[int, list[str]]) -> dict[int, list[str]]:
        for position in v:
            if position < 1:
                raise ValueError(f"allowed: position {position} must be ≥ 1")
        return v

    @field_validator("max_per_group")
    @classmethod
    def _positive_caps(cls, v: int | dict[str, int] | None) -> int | dict[str, int] | None:
        caps = [v] if isinstance(v, int) else list((v or {}).values())
        if any(c < 1 for c in caps):
            raise ValueError(f"max_per_group must be ≥ 1, got {v}")
        return v

    def merged(self, request: SlateRules | None) -> SlateRules:
        """The app's rules with a request's on top: exclusions add up, the request's pins,
        allowed sets and groups win per key, and the tighter cap holds."""
        if request is None:
            return self
        cap = self.max_per_group
        if request.max_per_group is not None:
            cap = _tighter(cap, request.max_per_group)
        return SlateRules(
            exclude=[*self.exclude, *request.exclude],
            pin={**self.pin, **request.pin},
            allowed={**self.allowed, **request.allowed},
            groups={**self.groups, **request.groups},
            item_age_seconds={**self.item_age_seconds, **request.item_age_seconds},
            max_per_group=cap,
        )

    def cap(self, group: str) -> int | None:
        """The most items of `group` a slate may hold (None: no cap)."""
        caps = _as_caps(self.max_per_group)
        return caps.get(group, caps.get("*"))


def _tighter(a: int | dict[str, int] | None, b: int | dict[str, int]) -> dict[str, int]:
    """Per group the smaller cap; "*" is the cap of every group not named."""
    da, db = _as_caps(a), _as_caps(b)
    out = {}
    for g in set(da) | set(db):
        caps = [c for c in (da.get(g, da.get("*")), db.get(g, db.get("*"))) if c is not None]
        out[g] = min(caps)
    return out


def _as_caps(v: int | dict[str, int] | None) -> dict[str, int]:
    if v is None:
        return {}
    return {"*": v} if isinstance(v, int) else dict(v)


class ColdStart(BaseModel):
    """A boost for new items: those younger than `max_age_seconds` (ages come with the
    request, `rules.item_age_seconds`) get at least `share` of each position's probability,
    as an exposure floor of the group "new"; `share` is capped by the exploration budget."""

    model_config = ConfigDict(extra="forbid")

    max_age_seconds: float = Field(86_400.0, gt=0.0)
    share: float = Field(0.1, ge=0.0, le=1.0)


class SlateConfig(BaseModel):
    """An app's slate settings: positions by default, standing rules, exposure floors."""

    model_config = ConfigDict(extra="forbid")

    positions: int = Field(
        5, ge=1, le=256, description="Positions of a slate when a request says none."
    )
    rules: SlateRules = Field(default_factory=SlateRules)
    exposure_floors: dict[str, float] = Field(
        default_factory=dict,
        description="Group → the least share of each position's probability its items get "
        "(when the position has any), e.g. {'new-creators': 0.1}.",
    )
    cold_start: ColdStart | None = None
    exploration_budget: float = Field(
        0.2, ge=0.0, le=1.0, description="Most probability the cold-start boost moves per position."
    )

    @field_validator("exposure_floors")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        if any(not 0.0 <= f <= 1.0 for f in v.values()):
            raise ValueError(f"exposure_floors are shares in [0, 1], got {v}")
        if sum(v.values()) > 1.0:
            raise ValueError(f"exposure_floors add up to more than 1: {v}")
        return v

    def floors(self) -> dict[str, float]:
        """The exposure floors, with the cold-start group ("new") at its share capped by
        the exploration budget (the most probability the boost moves at a position)."""
        floors = dict(self.exposure_floors)
        if self.cold_start is not None and self.cold_start.share > 0.0:
            floors[NEW_GROUP] = min(self.cold_start.share, self.exploration_budget)
        return floors


NEW_GROUP = "new"  # the cold-start boost's group
