"""Request and response bodies for `/api/v1/auth`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from controlplane.auth.passwords import MAX_INPUT
from controlplane.users.schemas import Email

Password = Annotated[str, Field(min_length=1, max_length=MAX_INPUT)]
RefreshToken = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterRequest(_Strict):
    email: Email
    password: Password
    registration_token: Annotated[str, Field(max_length=256)] | None = Field(
        None, description="Required when the operator set REGISTRATION_TOKEN"
    )


class LoginRequest(_Strict):
    email: Email
    password: Password
    refresh_in_cookie: bool = Field(
        False,
        description="For browsers: the refresh token goes into the HttpOnly cookie cp_refresh"
        " (path /api/v1/auth) instead of the answer, whose refresh_token is then null",
    )


class RefreshRequest(_Strict):
    refresh_token: RefreshToken | None = Field(
        None, description="Absent (or no body at all): the cp_refresh cookie is used"
    )


class PasswordChange(_Strict):
    current_password: Password
    new_password: Password
    refresh_in_cookie: bool = Field(
        False,
        description="For browsers: the new refresh token replaces the cp_refresh cookie"
        " instead of coming back in the answer, whose refresh_token is then null",
    )


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth 2 token type)
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str | None = Field(
        description="null when the refresh token was set in the cp_refresh cookie instead"
    )
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")


class AuthConfig(BaseModel):
    """What sign-up and the account pages need to know before the user logs in."""

    registration_token_required: bool = Field(description="Sign-up needs registration_token")
    email_verification_required: bool = Field(
        description="Users must verify their e-mail before they can create tenants"
    )
    password_reset_available: bool = Field(description="forgot-password can send a mail")
    billing_enabled: bool = Field(description="Stripe billing is configured")


OneTimeToken = Annotated[str, Field(min_length=1, max_length=256)]


class VerifyEmail(_Strict):
    token: OneTimeToken = Field(description="From the link in the verification mail")


class ForgotPassword(_Strict):
    email: Email


class ResetPassword(_Strict):
    token: OneTimeToken = Field(description="From the link in the reset mail")
    new_password: Password
