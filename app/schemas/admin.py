"""Bodies of the admin API (``/key/*``, ``/team/*``), shaped like LiteLLM proxy's.

Unknown fields are refused (400) rather than silently ignored: a misspelt
``rpm_limt`` must not create a key without a limit. Every value is bounded here, so
that what reaches the store fits its column and what reaches the limiter is a sane
number: a value out of range is a 400 naming the field, never a 500 (a datetime
overflow) or a database refusal. The bounds:

- limits: ``rpm_limit``/``tpm_limit`` at most ``MAX_LIMIT`` (10⁹: ``rpm_limit`` is an
  ``INTEGER`` column), ``max_budget`` finite and at most ``MAX_BUDGET`` ($10⁹);
- durations at most ``MAX_LIFETIME_S`` (100 years; ``duration`` is added to now),
  ``expires`` between 1970 and 100 years from now (a time without an offset is UTC);
- ids: ``team_id`` as ``team/new`` makes them (``[A-Za-z0-9._:-]``, ≤ 64), a ``key`` (the
  key or its id) printable ASCII ≤ 256; free text (aliases, model names) ≤ 256
  characters without NUL (Postgres refuses it); lists at most ``MAX_ITEMS``;
- ``metadata`` at most ``METADATA_DEPTH`` levels deep and ``METADATA_BYTES`` as JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.access.keys import parse_duration
from app.http import too_deep

MAX_LIMIT = 10**9
MAX_BUDGET = 1e9
MAX_LIFETIME_S = 100 * 365 * 86400
MAX_ITEMS = 1000
METADATA_DEPTH = 8
METADATA_BYTES = 16384
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TeamId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
KeyRef = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
"""A key (``sk-…``) or a ``key_id``: printable ASCII, no spaces."""
Text = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")]
"""Free text a person reads (aliases) or a model name: no NUL, ≤ 256 characters (the columns)."""
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _lifetime(value: str | None) -> str | None:
    seconds = parse_duration(value)
    if seconds is not None and (seconds > MAX_LIFETIME_S or len(value or "") > 16):
        raise ValueError(f"at most {MAX_LIFETIME_S // 86400}d")
    return value


def _not_null(value: bool | None) -> bool | None:
    if value is None:
        raise ValueError("must be true or false")
    return value


class _LimitFields(_Body):
    models: list[ModelName] | None = Field(None, max_length=MAX_ITEMS,
                                           description="Allowlist of model names; empty: all.")
    max_budget: float | None = Field(None, ge=0, le=MAX_BUDGET, description="$ per budget window.")
    budget_duration: str | None = Field(None, description="Budget window, e.g. `30d`; none: lifetime.")
    rpm_limit: int | None = Field(None, gt=0, le=MAX_LIMIT, description="Requests per minute, all replicas together.")
    tpm_limit: int | None = Field(None, gt=0, le=MAX_LIMIT, description="Tokens per minute (tokens actually used).")
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    check_budget_duration = field_validator("budget_duration")(_lifetime)
    check_blocked = field_validator("blocked")(_not_null)

    @field_validator("metadata")
    @classmethod
    def check_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        raw = orjson.dumps(v)
        if len(raw) > METADATA_BYTES:
            raise ValueError(f"at most {METADATA_BYTES} bytes as JSON")
        if too_deep(v, raw, METADATA_DEPTH):
            raise ValueError(f"at most {METADATA_DEPTH} levels deep")
        return v


def _expires(value: datetime | None) -> datetime | None:
    if value is None:
        return value
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EPOCH <= value <= datetime.now(UTC) + timedelta(seconds=MAX_LIFETIME_S):
        raise ValueError("must be between 1970 and 100 years from now")
    return value


class KeyGenerateRequest(_LimitFields):
    key_alias: Text | None = None
    team_id: TeamId | None = None
    expires: datetime | None = Field(None, description="When the key stops working (ISO 8601).")
    duration: str | None = Field(None, description="Or a lifetime from now, e.g. `30d`.")
    admin: bool = Field(False, description="May call the admin API.")

    check_duration = field_validator("duration")(_lifetime)
    check_expires = field_validator("expires")(_expires)


class KeyUpdateRequest(_LimitFields):
    key: KeyRef = Field(description="The key itself or its `key_id`.")
    key_alias: Text | None = None
    team_id: TeamId | None = None
    expires: datetime | None = None
    admin: bool | None = None

    check_expires = field_validator("expires")(_expires)
    check_admin = field_validator("admin")(_not_null)


class KeyDeleteRequest(_Body):
    keys: list[KeyRef] = Field(min_length=1, max_length=MAX_ITEMS, description="Keys or key ids.")


class KeyRefRequest(_Body):
    key: KeyRef


class TeamNewRequest(_LimitFields):
    team_id: TeamId | None = None
    team_alias: Text | None = None


class TeamUpdateRequest(_LimitFields):
    team_id: TeamId
    team_alias: Text | None = None


class TeamDeleteRequest(_Body):
    team_ids: list[TeamId] = Field(min_length=1, max_length=MAX_ITEMS)
