"""All settings of the control plane, read from the environment (and `.env`).

One settings class per integration (`DatabaseSettings`, `CaddySettings`, ...), each holding
its fields and its checks, composed by inheritance into the one typed `Settings` the
composition root builds at start-up (never at import time). The environment names are the
field names in upper case, without a prefix, so every group reads the variables it always
read, and `settings.caddy_admin_url` stays a plain typed attribute. A factory that needs one
integration's settings may take that group as its type (`settings: CaddySettings`); the
whole `Settings` satisfies it.

Secrets are validated here so `serve` refuses to start with a missing or malformed one,
naming the variable and the reason; `SecretStr` keeps them out of reprs and logs.

To add a setting: put the field (with its default and bounds) in the group of the
integration that reads it, or a new group added to the bases of `Settings` (which is what
`SETTINGS_GROUPS` lists); reuse the types below (`CommaList`, the URL types, `Token`,
`Rate`) instead of a new validator; then document it in `.env.example` (with a comment)
and the README's table (tests/foundation/test_settings.py checks both).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from functools import cached_property
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import limits
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    HttpUrl,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from controlplane.validation import full_match

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Values that ship in examples and must never reach production.
PLACEHOLDERS = {"changeme", "change-me", "secret", "example", "test", "token", "password"}


class SettingsError(Exception):
    """The environment does not describe a runnable control plane; the message says why."""


# --- value types shared by the groups ------------------------------------------------------

T = TypeVar("T")


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# `A,B, C` in the environment (NoDecode: not JSON), a list from Python; empty parts dropped.
CommaList = Annotated[list[T], NoDecode, BeforeValidator(_split_commas)]


def _empty_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _http_url(value: str, *, base: bool, query: bool, message: str) -> str:
    """Check `value` with pydantic's `HttpUrl` and return it as the operator spelled it.

    The spelling is kept because some of these URLs are compared byte for byte elsewhere:
    PUBLIC_URL is the issuer of every token. `base` refuses a path, `query=False` a query
    or fragment; user info and whitespace are always refused.
    """
    text = value.strip()
    try:
        url = _HTTP_URL.validate_python(text)
    except ValidationError:
        raise ValueError(message) from None
    if (
        not text.lower().startswith(("http://", "https://"))
        or any(c.isspace() for c in text)
        or url.username is not None
        or url.password is not None
        or (base and url.path not in (None, "/"))
        or (not query and (url.query is not None or url.fragment is not None))
    ):
        raise ValueError(message)
    return text


def _base_url(example: str) -> AfterValidator:
    message = f"must be an http(s) base URL such as {example}"
    return AfterValidator(
        lambda v: _http_url(v, base=True, query=False, message=message).rstrip("/")
    )


# An http(s) origin with nothing after it (an API base); the example goes into the refusal.
StripeBaseUrl = Annotated[str, _base_url("https://api.stripe.com")]
CaddyBaseUrl = Annotated[str, _base_url("http://127.0.0.1:2019")]
# An http(s) URL with an optional path but no query or fragment, without a trailing `/`.
PublicUrl = Annotated[
    str,
    AfterValidator(
        lambda v: _http_url(
            v,
            base=False,
            query=False,
            message="must be an http(s) URL such as https://cp.example.com",
        ).rstrip("/")
    ),
]
# Any absolute http(s) URL; empty means "not set".
AbsoluteUrl = Annotated[
    str,
    AfterValidator(
        lambda v: _http_url(v, base=False, query=True, message="must be an absolute http(s) URL")
    ),
]


def _check_token(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    raw = value.get_secret_value()
    if raw.strip().lower() in PLACEHOLDERS:
        raise ValueError("is a placeholder value; generate a random one")
    if len(raw) < 16:
        raise ValueError(f"must be at least 16 characters long, got {len(raw)}")
    return value


def _check_hex64(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    if value is None:
        return None
    name = (info.field_name or "key").upper()
    raw = value.get_secret_value()
    if not full_match(HEX64, raw):
        raise ValueError(f"{name} must be exactly 64 hex characters (32 bytes), got {len(raw)}")
    if len(set(raw.lower())) < 4:
        raise ValueError(f"{name} looks like a placeholder (too few distinct characters)")
    return value


def _check_rate(value: str) -> str:
    try:
        limits.parse(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate such as '10/minute' or '300 per hour'") from None
    return value


def _check_rate_storage(value: str) -> str:
    """memory, postgresql, or a storage URI of the `limits` package whose client is installed."""
    if value in ("memory", "postgresql"):
        return value
    from limits.errors import ConfigurationError
    from limits.storage import storage_from_string

    try:  # builds the client (no connection yet): refuses unknown schemes, missing clients
        storage_from_string(value if value.startswith("async+") else f"async+{value}")
    except ConfigurationError as exc:
        raise ValueError(
            f"{value!r}: {exc} (use memory, postgresql, or a `limits` storage URI "
            "such as redis://host:6379)"
        ) from None
    return value


def _check_proxy(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return value


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value))
    except ValueError as exc:
        raise ValueError(f"must be networks such as 10.0.0.0/8: {exc}") from None


def _check_dns_entry(value: str) -> str:
    if not full_match(r"[A-Za-z0-9.:-]{1,253}", value):
        raise ValueError(f"{value!r} is not a DNS server address or search domain")
    return value


def _check_origin(value: str) -> str:
    # An origin is scheme://host[:port] and nothing else; `localhost:5173` (no scheme) would
    # match no browser's Origin header and quietly allow nothing.
    value = value.strip()
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(
            f"{value!r} is not an origin: write each as scheme://host[:port], e.g. "
            "CORS_ORIGINS=http://localhost:5173,http://localhost:5174"
        )
    return value.rstrip("/")


def default_public_url(bind_addr: str, host_port: int) -> str:
    """PUBLIC_URL when none is set: where this server listens, as a browser on the same
    machine reaches it (a wildcard or loopback address is `localhost`)."""
    host = bind_addr.strip("[]")
    if host in ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{host_port}"


# An optional token of at least 16 characters that is not a known placeholder.
Token = Annotated[SecretStr | None, AfterValidator(_check_token)]
# An optional 32-byte key as 64 hex characters.
Hex64Key = Annotated[SecretStr | None, AfterValidator(_check_hex64)]
# A rate in the `limits` notation: "10/minute", "300 per hour".
Rate = Annotated[str, AfterValidator(_check_rate)]
# A Stripe secret, empty meaning "not set".
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
# An optional string, blank meaning "not set".
OptionalStr = Annotated[str | None, AfterValidator(lambda v: v.strip() or None if v else None)]


# --- the groups, one per integration ---------------------------------------------------------


class ProcessSettings(BaseModel):
    """What every process needs: the key that seals secrets at rest, and its logs."""

    encryption_key: Hex64Key = Field(None, description="64 hex chars: AES-256-GCM key")
    log_level: str = "INFO"

    @cached_property
    def encryption_key_bytes(self) -> bytes:
        assert self.encryption_key is not None
        return bytes.fromhex(self.encryption_key.get_secret_value())


class DatabaseSettings(BaseModel):
    """PostgreSQL: an external server, or the embedded one when the URL is empty."""

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


class HttpSettings(BaseModel):
    """The API server: where it listens, whom it believes, what it accepts."""

    api_token: Token = Field(None, description="Admin bearer token for /api/v1")
    metrics_token: Token = Field(None, description="Optional token for /metrics")
    bind_addr: str = "127.0.0.1"
    host_port: int = Field(8080, ge=1, le=65535)
    cors_origins: CommaList[Annotated[str, AfterValidator(_check_origin)]] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://localhost:5174"]
    )
    trusted_proxies: CommaList[Annotated[str, AfterValidator(_check_proxy)]] = Field(
        default_factory=list
    )
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
    rate_limit_api: Rate = Field("300/minute", description="Per client IP, the rest of /api")
    rate_limit_storage: Annotated[str, AfterValidator(_check_rate_storage)] = Field(
        "memory",
        description="Where rate-limit counters live: memory (per process), postgresql, "
        "or a limits storage URI such as redis://host:6379 (shared by every replica)",
    )
    rate_limit_ask: Rate = Field(
        "6000/minute", description="Per client IP, Caddy's on-demand TLS ask (its own bucket)"
    )


# The private ranges (RFC 1918, unique local IPv6): narrow them to your bridge's subnet.
DEFAULT_TENANT_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def _check_reserved_label(value: str) -> str:
    label = value.strip().lower()
    if not re.fullmatch(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?", label):
        raise ValueError(f"{value!r} is not a DNS label such as billing-eu")
    return label


def _check_tenant_network(value: str) -> str:
    try:
        net = ipaddress.ip_network(value.strip())
    except ValueError as exc:
        raise ValueError(f"must be networks such as 10.10.0.0/16: {exc}") from None
    # A catch-all would let a tenant's container claim any address the edge can reach.
    if net.prefixlen < (8 if net.version == 4 else 7):
        raise ValueError(f"{net} is too wide: list the networks your tenant containers live in")
    return str(net)


class TenantSettings(BaseModel):
    """How tenants are named (`{subdomain}.{BASE_DOMAIN}`) and where they may live."""

    base_domain: str = "localhost"
    reserved_subdomains: CommaList[Annotated[str, AfterValidator(_check_reserved_label)]] = Field(
        default_factory=list,
        description="More subdomains no tenant may take (besides the built-in and derived ones)",
    )
    tenant_zone_shared: bool = Field(
        False,
        description="Accept a PUBLIC_URL/ADMIN_ORIGIN host under BASE_DOMAIN (not recommended)",
    )
    subdomain_hold_days: float = Field(
        7.0,
        ge=0.0,
        le=365.0,
        description="A deleted tenant's subdomain stays reserved for its owner this long",
    )
    tenant_networks: CommaList[Annotated[str, AfterValidator(_check_tenant_network)]] = Field(
        default_factory=lambda: list(DEFAULT_TENANT_NETWORKS),
        description="Networks tenant containers' addresses must lie in (pinned at provisioning)",
    )


class AuthSettings(BaseModel):
    """User accounts, their tokens and passwords (users/, auth/, sso/)."""

    jwt_secret: Hex64Key = Field(None, description="64 hex chars: HS256 key for JWTs")
    registration_token: Token = Field(None, description="Required to sign up, if set")
    public_url: PublicUrl = Field(
        "http://localhost:8080",
        description="External base URL of the control plane: token issuer and JWKS location; "
        "default http://{BIND_ADDR or localhost}:{HOST_PORT}",
    )
    rate_limit_auth: Rate = Field(
        "10/minute", description="Per client IP, each of register/login/refresh/password"
    )
    refresh_reuse_grace_s: int = Field(
        0,
        ge=0,
        le=60,
        description="A rotated refresh token still rotates this many seconds after its use",
    )
    login_account_max_failures: int = Field(
        20, ge=1, le=100_000, description="Failed logins per account per window, any address"
    )
    login_account_window_s: int = Field(900, ge=10, le=86_400)
    argon2_time_cost: int = Field(3, ge=1, le=64)
    argon2_memory_kib: int = Field(65_536, ge=8, le=4_194_304)
    argon2_parallelism: int = Field(4, ge=1, le=64)

    @model_validator(mode="after")
    def _check_argon2(self) -> Self:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("ARGON2_MEMORY_KIB must be at least 8 x ARGON2_PARALLELISM")
        return self


class DashboardSettings(BaseModel):
    """The admin dashboard (controlplane.admin): passkeys and sessions."""

    admin_origin: str = "http://localhost:8080"
    setup_token: Token = Field(None, description="Registers the first passkey")
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
    admin_setup_max_failures: int = Field(
        100, ge=1, le=100_000, description="Wrong setup tokens per window, all addresses together"
    )


class PortalSettings(BaseModel):
    """The customer portal (controlplane.portal): where its built files are."""

    portal_dir: OptionalStr = Field(
        None, description="The portal's build folder; default portal/build when it was built"
    )


class WorkerSettings(BaseModel):
    """The provisioning workers and the pollers."""

    run_workers: bool = True
    worker_process: bool = Field(
        True, description="serve runs the workers in a child process it supervises"
    )
    worker_process_nice: int = Field(
        0, ge=0, le=19, description="How much lower the CPU priority of that child is"
    )
    worker_concurrency: int = Field(10, ge=1, le=500)
    worker_lease_seconds: float = Field(30.0, ge=1.0, le=3600.0)
    warm_pool_concurrency: int = Field(
        2, ge=1, le=100, description="Warm pool spares built or destroyed at once per process"
    )
    warm_pool_seconds: float = Field(
        2.0, ge=0.05, le=3600.0, description="How often the warm pool refiller looks for work"
    )
    node_poll_seconds: float = Field(10.0, ge=0.1, le=3600.0)
    tenant_poll_seconds: float = Field(30.0, ge=0.1, le=3600.0)
    reconcile_seconds: float = Field(60.0, ge=1.0, le=86400.0)
    usage_collect_seconds: float = Field(
        300.0,  # 10,000 tenants: 33 rrddata calls/s to the cluster; the hour archive spans 70 min
        ge=0.1,
        le=3600.0,  # below the hour archive's 70 minutes, so no point of it is ever missed
        description="How often each active tenant's and node's usage is read from Proxmox",
    )


class CaddySettings(BaseModel):
    """Tenant routes in Caddy (controlplane.caddy); enabled by CADDY_ADMIN_URL."""

    caddy_admin_url: Annotated[CaddyBaseUrl | None, BeforeValidator(_empty_to_none)] = None
    caddy_server: str = Field(
        "edge", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Caddy http server we manage"
    )
    caddy_listen: CommaList[str] = Field(
        default_factory=lambda: [":443"],
        description="Listen addresses, used only when the server is missing and gets created",
    )
    caddy_automatic_https: bool = Field(
        True, description="false: create the server with automatic HTTPS disabled"
    )
    caddy_reconcile_seconds: float = Field(30.0, ge=0.05, le=86_400.0)


def _check_wg_key(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("must be a WireGuard public key: base64 of 32 bytes (`wg pubkey`)")
    return value


def _check_wg_endpoint(value: str | None) -> str | None:
    if value is not None and not full_match(
        r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(?:[1-9]\d{0,4})", value
    ):
        raise ValueError("must be host:port, e.g. vpn.example.com:51820 or [2001:db8::1]:51820")
    return value


def _check_wg_subnet(value: str) -> str:
    try:
        net = ipaddress.ip_network(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a network such as 10.66.0.0/24") from None
    if net.num_addresses < 4:
        raise ValueError("is too small: it needs the hub and at least one peer")
    return str(net)


class WireGuardSettings(BaseModel):
    """WireGuard peers (controlplane.wireguard); enabled by WG_HUB_PUBLIC_KEY."""

    wg_hub_public_key: Annotated[OptionalStr, AfterValidator(_check_wg_key)] = None
    wg_endpoint: Annotated[OptionalStr, AfterValidator(_check_wg_endpoint)] = Field(
        None, description="host:port clients connect to"
    )
    wg_subnet: Annotated[str, AfterValidator(_check_wg_subnet)] = Field(
        "10.66.0.0/24", description="Peer addresses; the hub has the first"
    )
    wg_interface: str = Field("wg0", pattern=r"^[A-Za-z0-9_=+.-]{1,15}$")
    wg_dns: CommaList[Annotated[str, AfterValidator(_check_dns_entry)]] = Field(
        default_factory=list
    )
    wg_client_allowed_ips: CommaList[Annotated[str, AfterValidator(_check_network)]] = Field(
        default_factory=list, description="What clients route through the tunnel; [] = WG_SUBNET"
    )
    wg_allow_wide_allowed_ips: bool = Field(
        False,
        description="Accept a peer's allowed IPs wider than /8 (IPv6 /32), e.g. 0.0.0.0/0",
    )
    wg_uapi_dir: str = "/var/run/wireguard"
    wg_sync_seconds: float = Field(60.0, ge=0.05, le=86_400.0)

    @model_validator(mode="after")
    def _check_wireguard(self) -> Self:
        if self.wg_hub_public_key and not self.wg_endpoint:
            raise ValueError("WG_ENDPOINT (host:port) is required when WG_HUB_PUBLIC_KEY is set")
        return self


class BillingSettings(BaseModel):
    """Stripe billing (controlplane.billing); enabled by both Stripe secrets."""

    stripe_secret_key: OptionalSecret = None
    stripe_webhook_secret: OptionalSecret = None
    stripe_api_base: StripeBaseUrl = Field(
        "https://api.stripe.com", description="Stripe's API; a local stand-in in tests"
    )
    billing_grace_days: float = Field(
        7.0, ge=0.0, le=90.0, description="past_due this long, then the tenants are suspended"
    )
    billing_sweep_seconds: float = Field(
        60.0, ge=0.05, le=86_400.0, description="How often grace periods and holds are checked"
    )
    billing_hold_policy: Literal["excess", "all"] = Field(
        "excess",
        description="On hold: suspend only the tenants beyond the free tier (newest first), "
        "or all of them",
    )
    billing_success_url: Annotated[AbsoluteUrl | None, BeforeValidator(_empty_to_none)] = Field(
        None, description="Default: {PUBLIC_URL}/billing"
    )
    billing_cancel_url: Annotated[AbsoluteUrl | None, BeforeValidator(_empty_to_none)] = Field(
        None, description="Default: {PUBLIC_URL}/billing"
    )
    billing_portal_return_url: Annotated[AbsoluteUrl | None, BeforeValidator(_empty_to_none)] = (
        Field(None, description="Default: {PUBLIC_URL}/billing")
    )
    billing_free_max_tenants: int = Field(
        3, ge=0, le=100_000, description="Free tier, unless the settings define a `free` tier"
    )
    billing_free_max_ram_mb: int = Field(4096, ge=0, le=16_777_216)
    billing_free_max_snapshots: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        3, ge=0, le=10_000, description="Free tier's snapshots, all tenants together"
    )
    billing_free_max_backups: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        3, ge=0, le=10_000, description="Free tier's backups, all tenants together"
    )
    billing_free_max_disk_gb: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        None, ge=1, le=1_000_000, description="Free tier's disk in GB (unset: no cap)"
    )

    @model_validator(mode="after")
    def _check_stripe(self) -> Self:
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


def _check_smtp_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://host:port or smtps://user:password@host:465")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError("has an invalid port") from None
    starttls = parse_qs(parts.query).get("starttls", ["auto"])[-1]
    if starttls not in ("auto", "require", "off") or (parts.path not in ("", "/")):
        raise ValueError("takes only ?starttls=auto|require|off after the host")
    return value


def _check_smtp_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        _check_smtp_url(value.get_secret_value())
    return value


class MailSettings(BaseModel):
    """E-mail (controlplane.mail): verification and password-reset mails through an outbox."""

    smtp_url: Annotated[OptionalSecret, AfterValidator(_check_smtp_secret)] = Field(
        None,
        description="smtp://host:25 (STARTTLS when offered; ?starttls=require|off), "
        "smtps://user:password@host:465; empty: no mail",
    )
    mail_from: OptionalStr = Field(
        None, description="From: of every mail, e.g. Control plane <noreply@example.com>"
    )
    email_verification: Literal["required", "off"] | None = Field(
        None,
        description="required: users verify their e-mail before creating tenants; "
        "default: required with SMTP_URL, off without",
    )

    @model_validator(mode="after")
    def _check_mail(self) -> Self:
        if self.smtp_url is not None:
            if not self.mail_from:
                raise ValueError("MAIL_FROM is required when SMTP_URL is set")
            if "\r" in self.mail_from or "\n" in self.mail_from:
                raise ValueError("MAIL_FROM must be one line")
        return self

    @property
    def mail_enabled(self) -> bool:
        return self.smtp_url is not None

    @property
    def email_verification_required(self) -> bool:
        if self.email_verification is None:
            return self.mail_enabled
        return self.email_verification == "required"


class EventsSettings(BaseModel):
    """Live events (controlplane.events): Server-Sent Events fed by LISTEN/NOTIFY."""

    events_heartbeat_s: float = Field(
        15.0, ge=0.05, le=300.0, description="A `: ping` comment this often on idle streams"
    )
    events_queue_size: int = Field(
        256, ge=1, le=100_000, description="Events buffered per client; a slower one is dropped"
    )
    events_retention_s: int = Field(
        86_400, ge=60, le=2_592_000, description="Events kept this long for Last-Event-ID"
    )


class ConsoleSettings(BaseModel):
    """The browser console and app management inside tenants (controlplane.console, .apps)."""

    console_idle_timeout_s: float = Field(
        900.0, ge=1.0, le=86_400.0, description="A console with no traffic this long is closed"
    )
    console_max_per_tenant: int = Field(
        3, ge=1, le=100, description="Open consoles at once on one tenant"
    )
    console_max_per_user: int = Field(
        5, ge=1, le=100, description="Open consoles at once of one user (all their tenants)"
    )
    app_command_timeout_s: float = Field(
        30.0, ge=1.0, le=3600.0, description="A restart, action or log read taking longer fails"
    )


class FleetSettings(BaseModel):
    """Operating a fleet: webhooks (controlplane.webhooks) and capacity samples."""

    webhook_timeout_s: float = Field(
        10.0, ge=0.5, le=120.0, description="A webhook receiver gets this long to answer"
    )
    webhook_poll_seconds: float = Field(
        1.0, ge=0.01, le=60.0, description="How often the sender looks for due deliveries"
    )
    webhook_retry_base_s: float = Field(
        10.0, ge=0.01, le=3600.0, description="First retry after this long, doubling each time"
    )
    webhook_concurrency: int = Field(
        16, ge=1, le=1000, description="Deliveries in flight at once per process"
    )
    webhook_allow_private: bool = Field(
        False,
        description="Allow webhook URLs whose host is or resolves to a loopback, private, "
        "link-local or other non-public address (receivers on your own network)",
    )
    capacity_sample_seconds: float = Field(
        3600.0, ge=0.05, le=86_400.0, description="How often today's capacity sample is taken"
    )
    move_health_wait_s: float = Field(
        120.0,
        ge=0.0,
        le=3600.0,
        description="How long a moved tenant's app gets to answer its health check on the "
        "target before the move is failed (the route still follows the container)",
    )


# --- the composition -------------------------------------------------------------------------


class Settings(
    ProcessSettings,
    DatabaseSettings,
    HttpSettings,
    TenantSettings,
    AuthSettings,
    DashboardSettings,
    PortalSettings,
    WorkerSettings,
    CaddySettings,
    WireGuardSettings,
    BillingSettings,
    EventsSettings,
    MailSettings,
    ConsoleSettings,
    FleetSettings,
    BaseSettings,
):
    """Every group at once, read from the environment and `.env`. Defines no field itself."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _default_public_url(cls, data: Any) -> Any:
        # Not set: where the server listens (`HOST_PORT` moved means the links move too).
        if isinstance(data, dict) and not str(data.get("public_url") or "").strip():
            port = data.get("host_port") or 8080
            try:
                port = int(port)
            except (TypeError, ValueError):
                return data  # HOST_PORT itself is refused with its own message
            data = {**data, "public_url": default_public_url(str(data.get("bind_addr") or
                                                                 "127.0.0.1"), port)}  # fmt: skip
        return data

    @model_validator(mode="after")
    def _check_tenant_zone(self) -> Self:
        # Tenants' sites under the control plane's own zone are its siblings: same site for
        # browsers (cookies scoped to the parent, SameSite no help), one wildcard for both.
        base = self.base_domain.strip(".").lower()
        # `localhost` (RFC 6761) is a development loopback name, never a public site.
        if self.tenant_zone_shared or base == "localhost":
            return self
        for name, url in (("PUBLIC_URL", self.public_url), ("ADMIN_ORIGIN", self.admin_origin)):
            host = (urlsplit(url).hostname or "").rstrip(".").lower()
            if host.endswith("." + base):
                raise ValueError(
                    f"BASE_DOMAIN {base!r} contains the control plane's own host {host!r} "
                    f"({name}): tenants' sites would be its siblings. Give tenants a dedicated "
                    f"zone (e.g. BASE_DOMAIN=tenants.{base}, or a separate domain), or set "
                    "TENANT_ZONE_SHARED=true to accept the shared zone"
                )
        return self

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


# Every group, in the order `.env.example` and the README present them: the bases of Settings.
SETTINGS_GROUPS: tuple[type[BaseModel], ...] = tuple(
    base for base in Settings.__bases__ if base is not BaseSettings
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
