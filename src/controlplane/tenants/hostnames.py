"""Which host names are tenants': `{subdomain}.{BASE_DOMAIN}`, minus the operator's own.

A tenant picks its subdomain, so a name the operator uses (or will use) must never be one:
Caddy would route it to the tenant, and `ask` would get it a certificate. Reserved are

- the common names operators and mail clients use (`COMMON_RESERVED`, which includes the
  validation's `RESERVED_SUBDOMAINS`), and any label starting with `_` (`_acme-challenge`,
  `_dmarc`: DNS records of the zone, not hosts);
- the operator's list, `RESERVED_SUBDOMAINS` in the environment;
- the label under BASE_DOMAIN of each of the control plane's hosts (PUBLIC_URL,
  ADMIN_ORIGIN): `cp` for `cp.example.com`, `ops` for `a.ops.example.com` (whose parent a
  tenant `ops` would otherwise serve).

`TenantHosts.from_settings(settings)` builds the rules; `refusal(label)` says why a label
cannot be a tenant's, `subdomain_of(host)` is the tenant label a host name stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.errors import Invalid
from controlplane.provisioner.addresses import host_of
from controlplane.validation import RESERVED_SUBDOMAINS

COMMON_RESERVED = RESERVED_SUBDOMAINS | frozenset(
    {
        "cp",
        "controlplane",
        "console",
        "portal",
        "my",
        "account",
        "accounts",
        "manage",
        "management",
        "webmail",
        "autodiscover",
        "autoconfig",
        "mx",
        "ns",
        "ns3",
        "ns4",
        "pop3",
        "id",
        "idp",
        "oauth",
        "signin",
        "signup",
        "register",
        "jwks",
        "metrics",
        "grafana",
        "monitor",
        "portal-api",
        "webhooks",
        "stripe",
        "caddy",
        "edge",
        "internal",
        "intranet",
        "mta-sts",
        "wpad",
        "isatap",
        "secure",
        "ssl",
        "test",
        "staging",
        "dev",
    }
)


def operator_hosts(settings: Any) -> frozenset[str]:
    """The control plane's own host names (lower case, no trailing dot)."""
    hosts = {host_of(settings.public_url), host_of(settings.admin_origin)}
    return frozenset(h.rstrip(".").lower() for h in hosts if h)


def label_under(host: str, base_domain: str) -> str | None:
    """`a.ops.example.com` under `example.com` -> `ops`; None when not strictly under it."""
    host, base = host.rstrip(".").lower(), base_domain.strip(".").lower()
    if not host.endswith("." + base):
        return None
    return host[: -len(base) - 1].rsplit(".", 1)[-1] or None


@dataclass(frozen=True)
class TenantHosts:
    base_domain: str
    reserved: frozenset[str] = frozenset()  # the operator's RESERVED_SUBDOMAINS
    operator_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any, *, base_domain: str | None = None) -> TenantHosts:
        return cls(
            base_domain=(base_domain or settings.base_domain).strip(".").lower(),
            reserved=frozenset(settings.reserved_subdomains),
            operator_hosts=operator_hosts(settings),
        )

    def derived(self) -> frozenset[str]:
        """Labels the control plane's own hosts take under the base domain."""
        labels = (label_under(h, self.base_domain) for h in self.operator_hosts)
        return frozenset(label for label in labels if label)

    def refusal(self, label: str) -> str | None:
        """None when `label` may be a tenant's subdomain, else why not."""
        label = label.lower()
        if label.startswith("_"):
            return f"{label!r} is reserved (labels starting with '_' are DNS records)"
        if label in self.derived():
            return f"{label!r} is reserved: the control plane's own host uses it"
        if label in COMMON_RESERVED or label in self.reserved:
            return f"{label!r} is reserved"
        return None

    def host(self, label: str) -> str:
        return f"{label.lower()}.{self.base_domain}"

    def subdomain_of(self, domain: str) -> str | None:
        """The tenant label `domain` is the host of, or None (not one label under the base
        domain, reserved, or one of the operator's own hosts)."""
        name = domain.strip().rstrip(".").lower()
        label, dot, rest = name.partition(".")
        if not dot or rest != self.base_domain or not label or name in self.operator_hosts:
            return None
        return None if self.refusal(label) else label


def require_tenant_label(hosts: TenantHosts, subdomain: str) -> None:
    """422 naming `subdomain` when it is one of the operator's names."""
    reason = hosts.refusal(subdomain)
    if reason is not None:
        raise Invalid(f"subdomain: {reason}", field="subdomain")
