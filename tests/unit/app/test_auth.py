from __future__ import annotations

import pytest

from app.auth import MasterKeyPolicy, api_credential, bearer_token
from app.errors import AuthenticationError


@pytest.mark.parametrize(("headers", "credential"), [
    ({"authorization": "Bearer sk-a"}, "Bearer sk-a"),
    ({"x-api-key": "sk-a"}, "Bearer sk-a"),
    ({"api-key": " sk-a "}, "Bearer sk-a"),
    ({"authorization": "Bearer sk-a", "x-api-key": "sk-b"}, "Bearer sk-a"),  # Authorization wins
    ({"x-api-key": "sk-a", "api-key": "sk-b"}, "Bearer sk-a"),
    ({"x-api-key": "  "}, None),
    ({}, None),
])
def test_api_credential_takes_the_key_from_any_header_clients_send(headers: dict[str, str],
                                                                   credential: str | None) -> None:
    assert api_credential(headers) == credential


def test_a_key_header_holding_a_bearer_value_is_not_unwrapped() -> None:
    assert bearer_token(api_credential({"x-api-key": "Bearer sk-a"})) == "Bearer sk-a"  # never key-shaped


async def test_the_master_key_works_from_x_api_key_and_nothing_else_does() -> None:
    policy = MasterKeyPolicy(lambda: "sk-master")
    assert (await policy.authenticate(api_credential({"x-api-key": "sk-master"}))).is_admin
    for headers in ({"api-key": "sk-other"}, {}):
        with pytest.raises(AuthenticationError):
            await policy.authenticate(api_credential(headers))
