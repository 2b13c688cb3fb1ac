"""Body of ``POST /v1/feedback``: a quality score for a routed request's answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128, description="The `x-request-id` of the rated response.")
    score: float = Field(ge=0, le=1, allow_inf_nan=False, description="Quality of the answer: 0 (bad) to 1 (good).")
