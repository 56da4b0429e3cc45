"""Dependencies for routes that act for an end user.

    async def handler(user: UserDep, actor: UserActorDep): ...

`UserDep` is the current user (a dict: the public fields of `UserPublic` and token_version)
from a valid access token, checked against the users row on every request (one primary-key
query), so a disabled user or a changed password locks old tokens out at once. Anything
else is a 401 with a `WWW-Authenticate` challenge.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.auth.passwords import Hasher
from controlplane.auth.tokens import TokenError, decode_access_token
from controlplane.deps import Actor, StateDep
from controlplane.users import service as users
from controlplane.web.errors import Challenge

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="UserToken",
    description="A user access token from POST /api/v1/auth/login",
)


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="controlplane"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


async def current_user(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    if credentials is None:
        raise Challenge("missing bearer token", headers=_challenge())
    try:
        claims = decode_access_token(state.settings, credentials.credentials)
    except TokenError as exc:
        raise Challenge(str(exc), headers=_challenge("invalid_token")) from None
    user = await users.user_for_token(state.db, claims.user_id)
    if user is None or user["disabled_at"] is not None or user["token_version"] != claims.version:
        raise Challenge("access token revoked", headers=_challenge("invalid_token"))
    return user


UserDep = Annotated[dict[str, Any], Depends(current_user)]


def actor_for(user_id: object, email: str | None = None) -> Actor:
    """The audit actor for a user (`user:<id>` in the log)."""
    return Actor(kind="user", id=str(user_id), label=email or str(user_id))


async def user_actor(user: UserDep) -> Actor:
    return actor_for(user["id"], user["email"])


UserActorDep = Annotated[Actor, Depends(user_actor)]


async def get_hasher(state: StateDep) -> Hasher:
    """The process's password hasher (built by the composition root)."""
    return state.password_hasher


HasherDep = Annotated[Hasher, Depends(get_hasher)]
