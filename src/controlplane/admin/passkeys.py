"""WebAuthn ceremonies (py_webauthn) and passkey management.

Each ceremony has two steps. `begin_*` stores a random challenge in `admin_challenges`
under an unguessable ticket and returns the options for `navigator.credentials`; `finish_*`
takes the ticket's challenge exactly once and verifies the browser's answer against it,
the relying party id (the host of ADMIN_ORIGIN) and the exact origin. Challenges live in
PostgreSQL, so any replica can finish a ceremony another one began.

Rules:
- the first passkey needs SETUP_TOKEN (compared in constant time) and no passkey yet; the
  check and the insert run under one advisory lock, so two racing setups cannot both win;
- later passkeys are added by a logged-in admin, for themself;
- removing a passkey revokes the sessions it opened, and the last passkey of an admin
  cannot be removed.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.admin import ratelimit
from controlplane.admin.sessions import AdminSession, origin_host
from controlplane.config import Settings
from controlplane.db import ConstraintViolation, Database, load_queries
from controlplane.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

_Q = load_queries("controlplane.admin")
CHALLENGE_TTL_S = 300


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party(settings: Settings) -> RelyingParty:
    return RelyingParty(id=origin_host(settings), origin=settings.admin_origin.rstrip("/"))


async def setup_needed(db: Database) -> bool:
    """True while no passkey exists: the login page then offers the setup form."""
    return not await db.fetch_val(_Q["passkey_exists"])


async def _store_challenge(db: Database, purpose: str, challenge: bytes, **fields: Any) -> str:
    ticket = secrets.token_urlsafe(24)
    params = {
        "admin_user_id": None,
        "session_id": None,
        "user_name": None,
        "user_handle": None,
        "passkey_name": None,
        "client_ip": None,
        **fields,
        "id": ticket,
        "purpose": purpose,
        "challenge": challenge,
        "ttl": CHALLENGE_TTL_S,
    }
    await db.execute(_Q["challenge_insert"], params)
    return ticket


async def _take_challenge(db: Database, purpose: str, ticket: str) -> dict[str, Any]:
    row = await db.fetch_one(_Q["challenge_take"], {"id": ticket, "purpose": purpose})
    if row is None or not row["fresh"]:
        raise BadRequest("this passkey request is unknown or expired; start again", field="ticket")
    return row


def _registration_options(
    rp: RelyingParty, *, user_name: str, user_handle: bytes, exclude: list[dict[str, Any]]
) -> Any:
    from controlplane.admin import ceremony  # py_webauthn on the first ceremony only

    return ceremony.registration_options(
        rp_id=rp.id,
        user_name=user_name,
        user_handle=user_handle,
        exclude=[bytes(row["credential_id"]) for row in exclude],
    )


def _verify_registration(rp: RelyingParty, challenge: dict[str, Any], credential: Any) -> Any:
    from controlplane.admin import ceremony

    return ceremony.verify_registration(
        rp_id=rp.id,
        origin=rp.origin,
        challenge=bytes(challenge["challenge"]),
        credential=credential,
    )


def _options_json(options: Any) -> Any:
    from controlplane.admin import ceremony

    return ceremony.options_json(options)


def _passkey_params(
    verified: Any, *, admin_user_id: uuid.UUID, name: str, credential: Any
) -> dict[str, Any]:
    transports = []
    if isinstance(credential, dict):
        response = credential.get("response")
        if isinstance(response, dict) and isinstance(response.get("transports"), list):
            transports = [str(t)[:20] for t in response["transports"][:10]]
    return {
        "id": uuid.uuid4(),
        "admin_user_id": admin_user_id,
        "name": name,
        "credential_id": verified.credential_id,
        "public_key": verified.credential_public_key,
        "sign_count": verified.sign_count,
        "transports": Jsonb(transports),
        "aaguid": verified.aaguid,
        "backed_up": verified.credential_backed_up,
    }


# --- first passkey, with SETUP_TOKEN ----------------------------------------------------


async def begin_setup(
    db: Database,
    settings: Settings,
    *,
    setup_token: str,
    admin_name: str,
    passkey_name: str,
    client_ip: str,
) -> dict[str, Any]:
    await ratelimit.start(db, settings, client_ip)
    if settings.setup_token is None:
        raise Forbidden(
            "no SETUP_TOKEN is configured on the server; set one and restart to register "
            "the first passkey"
        )
    if not await setup_needed(db):
        raise Conflict("the dashboard is already set up; log in with a passkey")
    await ratelimit.check_setup(db, settings)
    expected = settings.setup_token.get_secret_value().encode()
    if not hmac.compare_digest(setup_token.encode(), expected):
        await ratelimit.record_wrong_setup_token(db, client_ip)
        raise Forbidden("the setup token is wrong", field="setup_token")
    user_handle = secrets.token_bytes(32)
    options = _registration_options(
        relying_party(settings), user_name=admin_name, user_handle=user_handle, exclude=[]
    )
    ticket = await _store_challenge(
        db,
        "setup",
        options.challenge,
        user_name=admin_name,
        user_handle=user_handle,
        passkey_name=passkey_name,
        client_ip=client_ip,
    )
    return {"ticket": ticket, "options": _options_json(options)}


async def finish_setup(
    db: Database, settings: Settings, *, ticket: str, credential: Any, client_ip: str
) -> dict[str, Any]:
    """Create the first admin and their passkey; returns the passkey row plus `user_name`."""
    await ratelimit.check(db, settings, client_ip)
    challenge = await _take_challenge(db, "setup", ticket)
    try:
        verified = _verify_registration(relying_party(settings), challenge, credential)
    except BadRequest:
        await ratelimit.record(db, client_ip, ok=False)
        raise
    async with db.transaction() as tx:
        await tx.execute(_Q["setup_lock"])
        if await tx.fetch_val(_Q["passkey_exists"]):
            raise Conflict("the dashboard was set up meanwhile; log in with a passkey")
        user = await tx.fetch_one(
            _Q["admin_user_insert"],
            {
                "id": uuid.uuid4(),
                "name": challenge["user_name"],
                "user_handle": challenge["user_handle"],
            },
        )
        assert user is not None
        passkey = await tx.fetch_one(
            _Q["passkey_insert"],
            _passkey_params(
                verified,
                admin_user_id=user["id"],
                name=challenge["passkey_name"],
                credential=credential,
            ),
        )
    assert passkey is not None
    await ratelimit.record(db, client_ip, ok=True)
    return {**passkey, "user_name": user["name"]}


# --- login ----------------------------------------------------------------------------


async def begin_login(db: Database, settings: Settings, *, client_ip: str) -> dict[str, Any]:
    await ratelimit.start(db, settings, client_ip)
    from controlplane.admin import ceremony  # py_webauthn on the first ceremony only

    options = ceremony.authentication_options(rp_id=relying_party(settings).id)
    ticket = await _store_challenge(db, "login", options.challenge, client_ip=client_ip)
    return {"ticket": ticket, "options": _options_json(options)}


async def finish_login(
    db: Database, settings: Settings, *, ticket: str, credential: Any, client_ip: str
) -> dict[str, Any]:
    """Verify a passkey assertion; returns the passkey row with `user_name`."""
    await ratelimit.check(db, settings, client_ip)
    challenge = await _take_challenge(db, "login", ticket)
    try:
        passkey = await _verify_login(db, settings, challenge, credential)
    except (BadRequest, Unauthorized):
        await ratelimit.record(db, client_ip, ok=False)
        raise
    await ratelimit.record(db, client_ip, ok=True)
    return passkey


async def _verify_login(
    db: Database, settings: Settings, challenge: dict[str, Any], credential: Any
) -> dict[str, Any]:
    from controlplane.admin import ceremony

    if not isinstance(credential, dict):
        raise BadRequest("credential must be an object", field="credential")
    passkey = await db.fetch_one(
        _Q["passkey_by_credential"], {"credential_id": ceremony.credential_id(credential)}
    )
    if passkey is None:
        raise Unauthorized("this passkey is not registered here")
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if handle and not ceremony.user_handle_matches(handle, bytes(passkey["user_handle"])):
        raise Unauthorized("the passkey answered for another user")
    rp = relying_party(settings)
    verified = ceremony.verify_authentication(
        rp_id=rp.id,
        origin=rp.origin,
        challenge=bytes(challenge["challenge"]),
        credential=credential,
        public_key=bytes(passkey["public_key"]),
        sign_count=passkey["sign_count"],
    )
    used = await db.fetch_one(
        _Q["passkey_use"],
        {"id": passkey["id"], "old": passkey["sign_count"], "new": verified.new_sign_count},
    )
    if used is None:
        raise Unauthorized("this passkey was used at the same moment elsewhere; try again")
    return {
        "id": passkey["id"],
        "name": passkey["name"],
        "admin_user_id": passkey["admin_user_id"],
        "user_name": passkey["user_name"],
    }


# --- more passkeys, by a logged-in admin -------------------------------------------------


async def begin_add(
    db: Database, settings: Settings, session: AdminSession, *, passkey_name: str
) -> dict[str, Any]:
    user = await db.fetch_one(_Q["admin_user_get"], {"id": session.admin_user_id})
    if user is None:
        raise NotFound("your admin account no longer exists")
    existing = await db.fetch_all(
        _Q["passkey_credentials_of_user"], {"user_id": session.admin_user_id}
    )
    options = _registration_options(
        relying_party(settings),
        user_name=user["name"],
        user_handle=bytes(user["user_handle"]),
        exclude=existing,
    )
    ticket = await _store_challenge(
        db,
        "add_passkey",
        options.challenge,
        admin_user_id=session.admin_user_id,
        session_id=session.id,
        passkey_name=passkey_name,
    )
    return {"ticket": ticket, "options": _options_json(options)}


async def finish_add(
    db: Database, settings: Settings, session: AdminSession, *, ticket: str, credential: Any
) -> dict[str, Any]:
    challenge = await _take_challenge(db, "add_passkey", ticket)
    if challenge["session_id"] != session.id:
        raise BadRequest("this passkey request belongs to another session", field="ticket")
    verified = _verify_registration(relying_party(settings), challenge, credential)
    try:
        row = await db.fetch_one(
            _Q["passkey_insert"],
            _passkey_params(
                verified,
                admin_user_id=session.admin_user_id,
                name=challenge["passkey_name"],
                credential=credential,
            ),
        )
    except ConstraintViolation:
        raise Conflict("this passkey is already registered", field="credential") from None
    assert row is not None
    return row


async def list_passkeys(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["passkey_list"])


async def rename_passkey(db: Database, passkey_id: uuid.UUID, name: str) -> dict[str, Any]:
    row = await db.fetch_one(_Q["passkey_rename"], {"id": passkey_id, "name": name})
    if row is None:
        raise NotFound(f"passkey {passkey_id} not found")
    return row


async def remove_passkey(db: Database, passkey_id: uuid.UUID) -> dict[str, Any]:
    """Delete a passkey and revoke the sessions it opened; never an admin's last one.

    Returns the deleted row with `revoked_sessions` (their ids).
    """
    async with db.transaction() as tx:
        passkey = await tx.fetch_one(_Q["passkey_get"], {"id": passkey_id})
        if passkey is None:
            raise NotFound(f"passkey {passkey_id} not found")
        # Lock the owner: two removals of an admin's last two passkeys run one after the other.
        await tx.execute(_Q["admin_user_lock"], {"id": passkey["admin_user_id"]})
        # Read again under the lock: a removal of this very passkey may have just committed.
        if await tx.fetch_one(_Q["passkey_get"], {"id": passkey_id}) is None:
            raise NotFound(f"passkey {passkey_id} not found")
        remaining = await tx.fetch_val(
            _Q["passkey_count_of_user"], {"user_id": passkey["admin_user_id"]}
        )
        if remaining <= 1:
            raise Conflict(
                "this is the last passkey of its admin; add another one before removing it"
            )
        revoked = await tx.fetch_all(
            _Q["sessions_revoke_for_passkey"],
            {"passkey_id": passkey_id, "reason": "passkey removed"},
        )
        deleted = await tx.fetch_one(_Q["passkey_delete"], {"id": passkey_id})
    assert deleted is not None
    return {**deleted, "revoked_sessions": [r["id"] for r in revoked]}
