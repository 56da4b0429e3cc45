"""The services one process runs, built once by the composition root (`runtime.bootstrap`).

Frozen and typed: a handler or a test reads `services.proxmox`, never a string key, and
nothing replaces a service after start-up (tests pass `overrides` to `bootstrap` instead).
An integration that is not configured is `None`.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.audit.writer import AuditLog
from controlplane.auth.passwords import Hasher
from controlplane.billing.stripe_api import StripeGateway
from controlplane.caddy.routes import CaddyRoutes
from controlplane.caddy.sync import RouteReconciler
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.events.hub import EventHub
from controlplane.mail.sender import MailSender
from controlplane.metrics.registry import Metrics
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.nodes.service import NodeVerifier
from controlplane.operations.worker import OperationWorker
from controlplane.provisioner.worker import Worker
from controlplane.sshexec.pool import SshPool
from controlplane.sso.keys import SigningKeys
from controlplane.webhooks.sender import WebhookSender
from controlplane.wireguard.sync import PeerSyncer


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    sealer: Sealer
    audit: AuditLog
    metrics: Metrics
    password_hasher: Hasher
    signing_keys: SigningKeys
    proxmox: ProxmoxRegistry
    node_verifier: NodeVerifier
    # Caddy (CADDY_ADMIN_URL): the route hook the provisioner calls, and its reconciler.
    route_hook: CaddyRoutes | None = None
    caddy_reconciler: RouteReconciler | None = None
    wireguard_sync: PeerSyncer | None = None  # WG_HUB_PUBLIC_KEY + WG_ENDPOINT
    stripe_gateway: StripeGateway | None = None  # billing enabled, in a process serving the API
    worker: Worker | None = None  # unless an API process runs with RUN_WORKERS=false
    operations: OperationWorker | None = None  # the lifecycle's, wherever `worker` runs
    events: EventHub | None = None  # live events, in a process serving the API
    mail_sender: MailSender | None = None  # SMTP_URL
    # One pinned SSH connection per node for consoles and app commands (API processes).
    ssh: SshPool | None = None
    webhook_sender: WebhookSender | None = None  # every process delivers webhooks
