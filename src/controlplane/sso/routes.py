"""HTTP for single sign-on: issue (user), the JWKS (public), redeem (tenant apps)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from controlplane.auth.deps import UserActorDep, UserDep
from controlplane.deps import AuditDep, DbDep, SealerDep, SettingsDep, StateDep
from controlplane.errors import Conflict
from controlplane.sso import service
from controlplane.tenants.service import get_tenant
from controlplane.web.errors import error_responses

router = APIRouter(tags=["sso"])


class SsoToken(BaseModel):
    token: str
    url: str = Field(description="Open this to be logged into the tenant's app")
    expires_in: int = Field(description="Seconds the token stays valid")


class SsoRedeem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    token: Annotated[str, Field(min_length=1, max_length=4096)]
    audience: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=r"^[A-Za-z0-9.-]+$",
            description="The redeeming app's own host name, e.g. acme.example.com",
        ),
    ]


class SsoClaims(BaseModel):
    iss: str
    aud: str
    sub: str = Field(description="The user's id")
    tid: str = Field(description="The tenant's id")
    email: str | None = None
    iat: int
    exp: int
    jti: str


@router.post(
    "/api/v1/user/tenants/{tenant_id}/sso-token",
    response_model=SsoToken,
    responses=error_responses(401, 404, 409, 422),
)
async def sso_token(
    tenant_id: UUID,
    user: UserDep,
    actor: UserActorDep,
    state: StateDep,
    db: DbDep,
    sealer: SealerDep,
    settings: SettingsDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    """A 60-second token, and the URL, that logs the user into their tenant's app."""
    tenant = await get_tenant(db, tenant_id, owner_user_id=user["id"])
    if tenant["status"] != "active":
        raise Conflict(f"tenant {tenant_id} is {tenant['status']}, not active")
    issued = await service.issue_sso_token(
        state,
        sealer,
        settings,
        user_id=user["id"],
        tenant_id=tenant_id,
        subdomain=tenant["subdomain"],
        email=user["email"],
    )
    audit(actor, "tenant.sso_token", "tenant", tenant_id)
    response.headers["Cache-Control"] = "no-store"
    return issued


@router.get("/.well-known/jwks.json", summary="Public keys that sign SSO tokens")
async def jwks(state: StateDep, sealer: SealerDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return await service.jwks(state, sealer)


@router.post(
    "/api/v1/sso/redeem",
    response_model=SsoClaims,
    responses=error_responses(400, 401, 409, 422),
)
async def redeem(body: SsoRedeem, state: StateDep, settings: SettingsDep) -> dict[str, Any]:
    """For tenant apps that want each SSO token used once: the first call with a token
    answers its claims, every later one 409. A token that does not verify for `audience`
    (bad signature, expired, another tenant's) is 401."""
    return await service.redeem_sso_token(
        state, settings, token=body.token, audience=body.audience.lower()
    )
