"""FastAPI dependency aliases: the gateway and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth import Principal
from app.gateway import Gateway


def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


def get_principal(request: Request) -> Principal:
    return request.app.state.authenticator.authenticate(request.headers.get("authorization"))


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
