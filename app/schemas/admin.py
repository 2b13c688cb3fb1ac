"""Bodies of the admin API (``/key/*``, ``/team/*``), shaped like LiteLLM proxy's.

Unknown fields are refused (400) rather than silently ignored: a misspelt
``rpm_limt`` must not create a key without a limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.access.keys import parse_duration


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _LimitFields(_Body):
    models: list[str] | None = Field(None, description="Allowlist of model names; empty: all.")
    max_budget: float | None = Field(None, ge=0, description="$ per budget window.")
    budget_duration: str | None = Field(None, description="Budget window, e.g. `30d`; none: lifetime.")
    rpm_limit: int | None = Field(None, gt=0, description="Requests per minute, all replicas together.")
    tpm_limit: int | None = Field(None, gt=0, description="Tokens per minute (tokens actually used).")
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    @field_validator("budget_duration")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        parse_duration(v)
        return v


class KeyGenerateRequest(_LimitFields):
    key_alias: str | None = Field(None, max_length=256)
    team_id: str | None = None
    expires: datetime | None = Field(None, description="When the key stops working (ISO 8601).")
    duration: str | None = Field(None, description="Or a lifetime from now, e.g. `30d`.")
    admin: bool = Field(False, description="May call the admin API.")

    @field_validator("duration")
    @classmethod
    def _lifetime(cls, v: str | None) -> str | None:
        parse_duration(v)
        return v


class KeyUpdateRequest(_LimitFields):
    key: str = Field(description="The key itself or its `key_id`.")
    key_alias: str | None = Field(None, max_length=256)
    team_id: str | None = None
    expires: datetime | None = None
    admin: bool | None = None


class KeyDeleteRequest(_Body):
    keys: list[str] = Field(min_length=1, description="Keys or key ids.")


class KeyRef(_Body):
    key: str


class TeamNewRequest(_LimitFields):
    team_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    team_alias: str | None = Field(None, max_length=256)


class TeamUpdateRequest(_LimitFields):
    team_id: str
    team_alias: str | None = Field(None, max_length=256)


class TeamDeleteRequest(_Body):
    team_ids: list[str] = Field(min_length=1)
