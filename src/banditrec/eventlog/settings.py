"""Operating settings of the event log (not per-app behaviour, which lives in AppConfig)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EventLogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spool_max_bytes: int = Field(256 << 20, ge=1 << 16, description="Bound of the on-disk spool.")
    spool_fsync: bool = Field(False, description="fsync every spooled write (survives power loss).")
    probe_interval_s: float = Field(0.25, gt=0.0, description="How often an outage is re-probed.")
    early_grace_s: float = Field(
        30.0, ge=0.0, description="How long a reward that came before its decision is held for it."
    )
    joined_ttl_s: int = Field(
        3600, ge=1, description="How long a joined event is remembered (late rewards, repeats)."
    )
    orphans_max_len: int = Field(100_000, ge=1, description="Rewards kept aside per app (newest).")
    retention_max_len: int = Field(1_000_000, ge=1, description="Joined events kept per app.")
    retention_max_age_s: float = Field(
        7 * 86400.0, gt=0.0, description="Age of joined events kept."
    )
    models_kept: int = Field(10, ge=1, description="Model versions kept per app (for rollback).")
