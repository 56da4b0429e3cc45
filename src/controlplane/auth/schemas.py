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


class RefreshRequest(_Strict):
    refresh_token: RefreshToken


class PasswordChange(_Strict):
    current_password: Password
    new_password: Password


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth 2 token type)
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")
