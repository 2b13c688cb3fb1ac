"""Admin bodies are bounded: out-of-range values are a 400 naming the field, never a 500 or a DB refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from app.schemas.admin import (
    MAX_LIMIT,
    KeyDeleteRequest,
    KeyGenerateRequest,
    KeyUpdateRequest,
    TeamNewRequest,
    TeamUpdateRequest,
)


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("schema", "body", "field"), [
    (KeyGenerateRequest, {"rpm_limit": 2**63}, "rpm_limit"),
    (KeyGenerateRequest, {"rpm_limit": MAX_LIMIT + 1}, "rpm_limit"),
    (KeyGenerateRequest, {"tpm_limit": 10**15}, "tpm_limit"),
    (KeyGenerateRequest, {"max_budget": float("inf")}, "max_budget"),
    (KeyGenerateRequest, {"max_budget": 1e20}, "max_budget"),
    (KeyGenerateRequest, {"duration": "99999999999d"}, "duration"),
    (KeyGenerateRequest, {"budget_duration": "99999999999999999d"}, "budget_duration"),
    (KeyGenerateRequest, {"expires": "9999-12-31T23:59:59Z"}, "expires"),
    (KeyGenerateRequest, {"expires": "1969-12-31T23:59:59Z"}, "expires"),
    (KeyGenerateRequest, {"metadata": deep(9)}, "metadata"),
    (KeyGenerateRequest, {"metadata": {"k": "x" * 20000}}, "metadata"),
    (KeyGenerateRequest, {"key_alias": "x" * 257}, "key_alias"),
    (KeyGenerateRequest, {"key_alias": "a\x00b"}, "key_alias"),
    (KeyGenerateRequest, {"team_id": "t" * 65}, "team_id"),
    (KeyGenerateRequest, {"models": ["m" * 257]}, "models.0"),
    (KeyGenerateRequest, {"models": ["m"] * 1001}, "models"),
    (KeyGenerateRequest, {"blocked": None}, "blocked"),
    (KeyUpdateRequest, {"key": "a\x00"}, "key"),
    (KeyUpdateRequest, {"key": "key_x", "admin": None}, "admin"),
    (KeyDeleteRequest, {"keys": ["k"] * 1001}, "keys"),
    (TeamNewRequest, {"team_id": "a b"}, "team_id"),
    (TeamNewRequest, {"tags": ["a"]}, "tags"),  # LiteLLM's key-only fields are not a team's (yet)
    (TeamNewRequest, {"max_parallel_requests": 2}, "max_parallel_requests"),
    (KeyGenerateRequest, {"budget_duration": "fortnightly"}, "budget_duration"),
    (KeyGenerateRequest, {"max_parallel_requests": 0}, "max_parallel_requests"),
    (KeyGenerateRequest, {"tags": ["a\x00"]}, "tags.0"),
    (KeyGenerateRequest, {"user_id": "u" * 257}, "user_id"),
    (KeyGenerateRequest, {"soft_budget": -1}, "soft_budget"),
    (KeyGenerateRequest, {"model_rpm_limit": {"m": 0}}, "model_rpm_limit.m"),
    (KeyGenerateRequest, {"model_tpm_limit": {f"m{i}": 1 for i in range(65)}}, "model_tpm_limit"),
    (KeyGenerateRequest, {"model_max_budget": {"m": {"max_budget": 1, "window": "1d"}}}, "model_max_budget.m.window"),
    (KeyGenerateRequest, {"model_max_budget": {"m": {"time_period": "1d"}}}, "model_max_budget.m.max_budget"),
    (KeyGenerateRequest, {"model_max_budget": {"m": {"budget_limit": 1, "time_period": "1y"}}},
     "model_max_budget.m.budget_duration"),
    (TeamUpdateRequest, {"team_id": "a\x00"}, "team_id"),
])
def test_out_of_range_values_are_refused_naming_the_field(schema: type[BaseModel], body: dict[str, Any],
                                                          field: str) -> None:
    with pytest.raises(ValidationError) as err:
        schema.model_validate(body)
    assert ".".join(str(p) for p in err.value.errors()[0]["loc"]) == field


def test_values_at_the_bounds_are_accepted() -> None:
    soon = datetime.now(UTC) + timedelta(days=365 * 99)
    body = KeyGenerateRequest.model_validate({
        "rpm_limit": MAX_LIMIT, "tpm_limit": MAX_LIMIT, "max_budget": 1e9, "duration": "36500d",
        "budget_duration": "1mo", "expires": soon.isoformat(), "metadata": deep(8), "key_alias": "ü" * 256,
        "models": ["m"] * 1000, "team_id": "team_a.b:c-1"})
    assert body.rpm_limit == MAX_LIMIT
    naive = KeyGenerateRequest.model_validate({"expires": "2030-01-01T00:00:00"})
    assert naive.expires == datetime(2030, 1, 1, tzinfo=UTC)  # a time without an offset is UTC


def test_litellm_budget_shapes_and_aliases_are_accepted() -> None:
    body = KeyGenerateRequest.model_validate({
        "budget_duration": "monthly", "model_max_budget": {
            "a": {"budget_limit": 0.5, "time_period": "1d"}, "b": {"max_budget": 2, "budget_duration": "7d"},
            "c": 3}})
    assert body.model_dump(include={"model_max_budget"})["model_max_budget"] == {
        "a": {"max_budget": 0.5, "budget_duration": "1d"}, "b": {"max_budget": 2.0, "budget_duration": "7d"},
        "c": {"max_budget": 3.0, "budget_duration": None}}
