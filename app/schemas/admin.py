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
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from app.access.budget_window import normalise as normalise_budget_duration
from app.access.keys import parse_duration
from app.http import too_deep

MAX_LIMIT = 10**9
MAX_BUDGET = 1e9
MAX_LIFETIME_S = 100 * 365 * 86400
MAX_ITEMS = 1000
MAX_MODEL_LIMITS = 64
"""Models with their own limits per key (each is a limiter scope on that model's requests)."""
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


def _budget_duration(value: str | None) -> str | None:
    """LiteLLM's ``budget_duration`` (``app.access.budget_window``: aliases such as
    ``monthly`` included), stored as sent (≤ 16 characters)."""
    if value is None:
        return value
    n, unit = normalise_budget_duration(value)
    if len(value) > 16 or n * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2678400}[unit] \
            > MAX_LIFETIME_S:
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

    check_budget_duration = field_validator("budget_duration")(_budget_duration)
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


Tag = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]
PerModelLimit = dict[ModelName, Annotated[int, Field(gt=0, le=MAX_LIMIT)]]


class ModelBudget(_Body):
    """One model's budget in ``model_max_budget``: LiteLLM's ``BudgetConfig`` (``max_budget`` or
    ``budget_limit``; ``budget_duration`` or ``time_period``). Without a duration the key's
    ``budget_duration`` applies."""

    max_budget: float = Field(ge=0, le=MAX_BUDGET)
    budget_duration: str | None = None

    check_budget_duration = field_validator("budget_duration")(_budget_duration)

    @model_validator(mode="before")
    @classmethod
    def litellm_names(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"max_budget": v}
        if isinstance(v, dict):
            renamed = {"budget_limit": "max_budget", "time_period": "budget_duration"}
            return {renamed.get(k, k): val for k, val in v.items()}
        return v


class _KeyFields(_LimitFields):
    """LiteLLM's key fields beyond a team's: whose key it is, its tags, its soft budget and
    its concurrency and per-model limits (enforced: ``app.access.policy``)."""

    user_id: Text | None = Field(None, description="The key's owner (filters `/key/list` and `/spend/logs`).")
    tags: list[Tag] | None = Field(None, max_length=MAX_ITEMS, description="Labels; `/key/list?tags=` filters on them.")
    soft_budget: float | None = Field(None, ge=0, le=MAX_BUDGET,
                                      description="$ per budget window past which an alert fires (once a window).")
    max_parallel_requests: int | None = Field(None, gt=0, le=MAX_LIMIT,
                                              description="Requests in flight at once, all replicas together.")
    model_max_budget: dict[ModelName, ModelBudget] | None = Field(None, max_length=MAX_MODEL_LIMITS,
                                                                  description="$ per budget window per model.")
    model_rpm_limit: PerModelLimit | None = Field(None, max_length=MAX_MODEL_LIMITS,
                                                  description="Requests a minute per model.")
    model_tpm_limit: PerModelLimit | None = Field(None, max_length=MAX_MODEL_LIMITS,
                                                  description="Tokens a minute per model.")


class KeyGenerateRequest(_KeyFields):
    key_alias: Text | None = None
    team_id: TeamId | None = None
    expires: datetime | None = Field(None, description="When the key stops working (ISO 8601).")
    duration: str | None = Field(None, description="Or a lifetime from now, e.g. `30d`.")
    admin: bool = Field(False, description="May call the admin API.")

    check_duration = field_validator("duration")(_lifetime)
    check_expires = field_validator("expires")(_expires)


class KeyUpdateRequest(_KeyFields):
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


class KeyRegenerateRequest(_Body):
    """``/key/regenerate``: LiteLLM's body (``key`` optional when the path names it); the new
    secret keeps the key id and every setting."""

    key: KeyRef | None = None
    new_key: Annotated[str, StringConstraints(pattern=r"^sk-[A-Za-z0-9_-]{43}$")] | None = Field(
        None, description="A chosen new secret (as `/key/generate` makes them); else a random one.")


class TeamNewRequest(_LimitFields):
    team_id: TeamId | None = None
    team_alias: Text | None = None


class TeamUpdateRequest(_LimitFields):
    team_id: TeamId
    team_alias: Text | None = None


class TeamDeleteRequest(_Body):
    team_ids: list[TeamId] = Field(min_length=1, max_length=MAX_ITEMS)
