"""The py_webauthn half of the passkey ceremonies: options out, answers verified.

py_webauthn (with cbor2 and the parts of cryptography it needs) costs about 6 MB of memory
and a tenth of a second at start-up, for pages an admin opens a few times a day. So
`passkeys` imports this module inside the functions that need it, and neither the API nor
the worker loads py_webauthn before the first ceremony.
"""

from __future__ import annotations

import json
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from controlplane.errors import BadRequest, Unauthorized

RP_NAME = "Control plane admin"
# What can go wrong while parsing and verifying a browser's answer, short of a bug.
_BAD_ANSWER = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError)


def options_json(options: Any) -> Any:
    """The options as the JSON object `navigator.credentials` takes."""
    return json.loads(options_to_json(options))


def registration_options(
    *, rp_id: str, user_name: str, user_handle: bytes, exclude: list[bytes]
) -> Any:
    return generate_registration_options(
        rp_id=rp_id,
        rp_name=RP_NAME,
        user_name=user_name,
        user_id=user_handle,
        user_display_name=user_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in exclude],
    )


def authentication_options(*, rp_id: str) -> Any:
    return generate_authentication_options(
        rp_id=rp_id, user_verification=UserVerificationRequirement.REQUIRED
    )


def verify_registration(*, rp_id: str, origin: str, challenge: bytes, credential: Any) -> Any:
    try:
        return verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except _BAD_ANSWER as exc:
        raise BadRequest(f"the passkey could not be verified: {exc}", field="credential") from None


def credential_id(credential: Any) -> bytes:
    try:
        raw = credential.get("rawId") or credential["id"]
        return base64url_to_bytes(str(raw))
    except _BAD_ANSWER:
        raise BadRequest("the answer names no credential", field="credential") from None


def user_handle_matches(handle: object, expected: bytes) -> bool:
    try:
        return base64url_to_bytes(str(handle)) == expected
    except _BAD_ANSWER:
        return False


def verify_authentication(
    *,
    rp_id: str,
    origin: str,
    challenge: bytes,
    credential: Any,
    public_key: bytes,
    sign_count: int,
) -> Any:
    try:
        return verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except _BAD_ANSWER as exc:
        raise Unauthorized(f"the passkey could not be verified: {exc}") from None
