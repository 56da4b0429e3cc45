"""All settings of the control plane, read from the environment (and `.env`).

One typed `Settings` object, built at start-up by the composition root (never at import
time). Secrets are validated here so `serve` refuses to start with a missing or malformed
one, naming the variable and the reason; `SecretStr` keeps them out of reprs and logs.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
# Values that ship in examples and must never reach production.
PLACEHOLDERS = {"changeme", "change-me", "secret", "example", "test", "token", "password"}


class SettingsError(Exception):
    """The environment does not describe a runnable control plane; the message says why."""


def _hex64(name: str, value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    raw = value.get_secret_value()
    if not HEX64.match(raw):
        raise ValueError(f"{name} must be exactly 64 hex characters (32 bytes), got {len(raw)}")
    if len(set(raw.lower())) < 4:
        raise ValueError(f"{name} looks like a placeholder (too few distinct characters)")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # --- secrets -------------------------------------------------------------------
    api_token: SecretStr | None = Field(None, description="Admin bearer token for /api/v1")
    encryption_key: SecretStr | None = Field(None, description="64 hex chars: AES-256-GCM key")
    jwt_secret: SecretStr | None = Field(None, description="64 hex chars: HS256 key for JWTs")
    setup_token: SecretStr | None = Field(None, description="Registers the first passkey")
    registration_token: SecretStr | None = Field(None, description="Required to sign up, if set")
    metrics_token: SecretStr | None = Field(None, description="Optional token for /metrics")

    # --- network -------------------------------------------------------------------
    bind_addr: str = "127.0.0.1"
    host_port: int = Field(8080, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://localhost:5174"]
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_origin: str = "http://localhost:8080"
    base_domain: str = "localhost"

    # --- database ------------------------------------------------------------------
    database_url: str | None = None
    db_pool_min: int = Field(2, ge=1)
    db_pool_max: int = Field(20, ge=1)
    db_pool_timeout_s: float = Field(
        10.0,
        ge=0.5,
        le=300.0,
        description="How long a request waits for a database connection before a 503",
    )
    embedded_pg_dir: str = "var/pg"

    # --- workers -------------------------------------------------------------------
    worker_concurrency: int = Field(10, ge=1, le=500)
    run_workers: bool = True
    worker_lease_seconds: float = Field(30.0, ge=1.0, le=3600.0)
    node_poll_seconds: float = Field(10.0, ge=0.1, le=3600.0)
    tenant_poll_seconds: float = Field(30.0, ge=0.1, le=3600.0)
    reconcile_seconds: float = Field(60.0, ge=1.0, le=86400.0)

    # --- integrations (all optional) -------------------------------------------------
    wg_hub_public_key: str | None = None
    caddy_admin_url: str | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None

    # --- limits --------------------------------------------------------------------
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_header_bytes: int = Field(
        65_536,
        ge=4096,
        le=16_777_216,
        description="Request line and headers above this many bytes: 431, connection closed",
    )
    max_header_count: int = Field(
        100, ge=10, le=10_000, description="More request headers than this: 431"
    )
    body_timeout_s: float = Field(
        20.0,
        ge=0.5,
        le=3600.0,
        description="A request body not complete this long after its headers: 408, closed",
    )
    log_level: str = "INFO"

    # --- user accounts, tokens, rate limits (users/auth/sso) ---------------------------
    public_url: str = Field(
        "http://localhost:8080",
        description="External base URL of the control plane: token issuer and JWKS location",
    )
    rate_limit_auth: str = Field(
        "10/minute", description="Per client IP, each of register/login/refresh/password"
    )
    rate_limit_api: str = Field("300/minute", description="Per client IP, the rest of /api")
    refresh_reuse_grace_s: int = Field(
        0,
        ge=0,
        le=60,
        description="A rotated refresh token still rotates this many seconds after its use",
    )
    argon2_time_cost: int = Field(3, ge=1, le=64)
    argon2_memory_kib: int = Field(65_536, ge=8, le=4_194_304)
    argon2_parallelism: int = Field(4, ge=1, le=64)

    # --- admin dashboard (controlplane.admin) ------------------------------------------
    admin_session_ttl_s: int = Field(
        43_200, ge=300, le=2_592_000, description="A dashboard session ends this long after login"
    )
    admin_session_idle_s: int = Field(
        1_800, ge=60, le=86_400, description="...or after this long without a request"
    )
    admin_login_max_failures: int = Field(
        10, ge=1, le=10_000, description="Failed logins per client address per window"
    )
    admin_login_window_s: int = Field(900, ge=10, le=86_400)

    # --- Caddy routes (controlplane.caddy; enabled by CADDY_ADMIN_URL) --------------------
    caddy_server: str = Field(
        "edge", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Caddy http server we manage"
    )
    caddy_listen: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [":443"],
        description="Listen addresses, used only when the server is missing and gets created",
    )
    caddy_automatic_https: bool = Field(
        True, description="false: create the server with automatic HTTPS disabled"
    )
    caddy_reconcile_seconds: float = Field(30.0, ge=0.05, le=86_400.0)

    # --- WireGuard peers (controlplane.wireguard; enabled by WG_HUB_PUBLIC_KEY) -----------
    wg_endpoint: str | None = Field(None, description="host:port clients connect to")
    wg_subnet: str = Field("10.66.0.0/24", description="Peer addresses; the hub has the first")
    wg_interface: str = Field("wg0", pattern=r"^[A-Za-z0-9_=+.-]{1,15}$")
    wg_dns: Annotated[list[str], NoDecode] = Field(default_factory=list)
    wg_client_allowed_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="What clients route through the tunnel; [] = WG_SUBNET"
    )
    wg_uapi_dir: str = "/var/run/wireguard"
    wg_sync_seconds: float = Field(60.0, ge=0.05, le=86_400.0)

    # --- billing (controlplane.billing; enabled by STRIPE_SECRET_KEY + STRIPE_WEBHOOK_SECRET)
    stripe_api_base: str = Field(
        "https://api.stripe.com", description="Stripe's API; a local stand-in in tests"
    )
    billing_grace_days: float = Field(
        7.0, ge=0.0, le=90.0, description="past_due this long, then the tenants are suspended"
    )
    billing_sweep_seconds: float = Field(
        60.0, ge=0.05, le=86_400.0, description="How often grace periods and holds are checked"
    )
    billing_success_url: str | None = Field(None, description="Default: {PUBLIC_URL}/billing")
    billing_cancel_url: str | None = Field(None, description="Default: {PUBLIC_URL}/billing")
    billing_portal_return_url: str | None = Field(None, description="Default: {PUBLIC_URL}/billing")
    billing_free_max_tenants: int = Field(
        3, ge=0, le=100_000, description="Free tier, unless the settings define a `free` tier"
    )
    billing_free_max_ram_mb: int = Field(4096, ge=0, le=16_777_216)

    @field_validator("stripe_api_base")
    @classmethod
    def _check_stripe_api_base(cls, v: str) -> str:
        if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?/?$", v):
            raise ValueError("must be an http(s) base URL such as https://api.stripe.com")
        return v.rstrip("/")

    @field_validator("billing_success_url", "billing_cancel_url", "billing_portal_return_url")
    @classmethod
    def _check_billing_url(cls, v: str | None) -> str | None:
        if not v or not v.strip():
            return None
        if not re.match(r"^https?://[^\s]+$", v.strip()):
            raise ValueError("must be an absolute http(s) URL")
        return v.strip()

    @field_validator("stripe_secret_key", "stripe_webhook_secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _check_stripe(self) -> Settings:
        key, hook = self.stripe_secret_key, self.stripe_webhook_secret
        if (key is None) != (hook is None):
            raise ValueError(
                "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET enable billing together: set both"
            )
        if key is not None and not key.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError("STRIPE_SECRET_KEY must be a Stripe secret key (sk_... or rk_...)")
        if hook is not None and not hook.get_secret_value().startswith("whsec_"):
            raise ValueError("STRIPE_WEBHOOK_SECRET must be a webhook signing secret (whsec_...)")
        return self

    @property
    def billing_enabled(self) -> bool:
        return self.stripe_secret_key is not None and self.stripe_webhook_secret is not None

    @field_validator("caddy_listen", "wg_dns", "wg_client_allowed_ips", mode="before")
    @classmethod
    def _split_csv_integrations(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("caddy_admin_url")
    @classmethod
    def _check_caddy_admin_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?/?$", v):
            raise ValueError("must be an http(s) base URL such as http://127.0.0.1:2019")
        return v.rstrip("/")

    @field_validator("wg_hub_public_key", "wg_endpoint")
    @classmethod
    def _empty_is_none(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None

    @field_validator("wg_hub_public_key")
    @classmethod
    def _check_wg_key(cls, v: str | None) -> str | None:
        if v is None:
            return None
        import base64
        import binascii

        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError("must be a WireGuard public key: base64 of 32 bytes (`wg pubkey`)")
        return v

    @field_validator("wg_endpoint")
    @classmethod
    def _check_wg_endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(
            r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(?:[1-9]\d{0,4})$", v
        ):
            raise ValueError("must be host:port, e.g. vpn.example.com:51820 or [2001:db8::1]:51820")
        return v

    @field_validator("wg_subnet")
    @classmethod
    def _check_wg_subnet(cls, v: str) -> str:
        import ipaddress

        try:
            net = ipaddress.ip_network(v.strip())
        except ValueError:
            raise ValueError(f"{v!r} is not a network such as 10.66.0.0/24") from None
        if net.num_addresses < 4:
            raise ValueError("is too small: it needs the hub and at least one peer")
        return str(net)

    @field_validator("wg_dns")
    @classmethod
    def _check_wg_dns(cls, v: list[str]) -> list[str]:
        for entry in v:
            if not re.match(r"^[A-Za-z0-9.:-]{1,253}$", entry):
                raise ValueError(f"{entry!r} is not a DNS server address or search domain")
        return v

    @field_validator("wg_client_allowed_ips")
    @classmethod
    def _check_wg_client_allowed_ips(cls, v: list[str]) -> list[str]:
        import ipaddress

        try:
            return [str(ipaddress.ip_network(entry)) for entry in v]
        except ValueError as exc:
            raise ValueError(f"must be networks such as 10.0.0.0/8: {exc}") from None

    @model_validator(mode="after")
    def _check_wireguard(self) -> Settings:
        if self.wg_hub_public_key and not self.wg_endpoint:
            raise ValueError("WG_ENDPOINT (host:port) is required when WG_HUB_PUBLIC_KEY is set")
        return self

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_auth", "rate_limit_api")
    @classmethod
    def _check_rate_limit(cls, v: str) -> str:
        import limits  # cheap, and only needed here

        try:
            limits.parse(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a rate such as '10/minute' or '300 per hour'") from None
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return v

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, v: str) -> str:
        if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?(?:/[^\s?#]*)?$", v):
            raise ValueError("must be an http(s) URL such as https://cp.example.com")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _check_argon2(self) -> Settings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("ARGON2_MEMORY_KIB must be at least 8 x ARGON2_PARALLELISM")
        return self

    @field_validator("encryption_key")
    @classmethod
    def _check_encryption_key(cls, v: SecretStr | None) -> SecretStr | None:
        return _hex64("ENCRYPTION_KEY", v)

    @field_validator("jwt_secret")
    @classmethod
    def _check_jwt_secret(cls, v: SecretStr | None) -> SecretStr | None:
        return _hex64("JWT_SECRET", v)

    @field_validator("api_token", "setup_token", "registration_token", "metrics_token")
    @classmethod
    def _check_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return None
        raw = v.get_secret_value()
        if raw.strip().lower() in PLACEHOLDERS:
            raise ValueError("is a placeholder value; generate a random one")
        if len(raw) < 16:
            raise ValueError(f"must be at least 16 characters long, got {len(raw)}")
        return v

    @cached_property
    def encryption_key_bytes(self) -> bytes:
        assert self.encryption_key is not None
        return bytes.fromhex(self.encryption_key.get_secret_value())

    def require_secrets(self) -> None:
        """Refuse to serve without the secrets the API cannot work without."""
        missing = [
            name
            for name, value in (
                ("API_TOKEN", self.api_token),
                ("ENCRYPTION_KEY", self.encryption_key),
                ("JWT_SECRET", self.jwt_secret),
            )
            if value is None
        ]
        if missing:
            raise SettingsError(
                "missing required secret(s): "
                + ", ".join(missing)
                + " (set them in the environment or .env; `make run` generates them)"
            )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]).upper() if err["loc"] else "?"
            problems.append(f"{field}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
