"""Body of ``POST /v1/feedback``: a quality score for a routed request's answer.

``request_id`` has the shape of the ids the gateway hands out (``app.http.request_id``
keeps a caller's ``x-request-id`` only when it has it), so any other value is a 400
here, before it reaches the decision store (whose ``text`` columns refuse a NUL).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$",
                            description="The `x-request-id` of the rated response.")
    score: float = Field(ge=0, le=1, allow_inf_nan=False, description="Quality of the answer: 0 (bad) to 1 (good).")
    key_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                               description="Admins only: whose request, when several keys sent the same id.")
