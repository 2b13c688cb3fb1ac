"""``GET /config/sync/status`` (master key or an admin key): which config version is live, where.

Like ``/router/info``, not ``Admin(...)``: a gateway without virtual keys must still say
what config it runs. A refused key is audited like the admin API's.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.access.policy import VirtualKeyPolicy
from app.deps import GatewayDep, PrincipalDep
from app.errors import NotFoundError, PermissionDeniedError
from app.http import id_header, json_response

router = APIRouter()


@router.get("/config/sync/status")
async def config_sync_status(request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    """Source, applied version (ETag, hash, applied at, sequence), last check and error, a
    pending graph update, the last change's diff and each replica's applied version."""
    if not principal.is_admin:
        if isinstance(policy := gateway.policy, VirtualKeyPolicy):
            await policy.store.audit(principal.key_id, "config.sync.status", None, "denied")
        raise PermissionDeniedError("only the master key or an admin key may read /config/sync/status")
    sync = getattr(gateway.config_sync, "status", None)
    if sync is None:
        raise NotFoundError("config sync is off (general_settings.config_sync.source is not set)",
                            code="config_sync_off")
    return json_response(orjson.dumps(await sync()), id_header(request, {}))
