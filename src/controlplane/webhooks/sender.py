"""Deliver the webhook outbox: claim due deliveries (SKIP LOCKED, so replicas share the
work), POST each signed event to its endpoint, mark it delivered, or retry with
exponential backoff.

Deliveries run as their own tasks, at most `WEBHOOK_CONCURRENCY` at once, each bounded by
`WEBHOOK_TIMEOUT_S`: a slow or dead receiver holds one slot for at most that long and
never an API request (the API only writes outbox rows). A delivery is marked delivered
only after a 2xx; a sender killed in between leaves its lease to run out and the event is
sent again (at least once: receivers deduplicate on the event id). After `MAX_ATTEMPTS`
the delivery is marked failed; the operator can redeliver it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import httpx
import psycopg

from controlplane.config import Settings
from controlplane.crypto import Sealer, SealError
from controlplane.db import Database
from controlplane.webhooks import signing, targets
from controlplane.webhooks.service import Q, open_secret

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
MAX_DELAY_S = 6 * 3600.0
PRUNE_EVERY_S = 3600.0
RETENTION_DAYS = 30
USER_AGENT = "controlplane-webhooks/1"
CHANNEL = "cp_webhooks"


def backoff(base_s: float, attempts: int) -> float:
    return float(min(base_s * 2 ** (attempts - 1), MAX_DELAY_S))


def envelope(row: dict[str, Any]) -> bytes:
    """The body: the same bytes on every attempt of one event."""
    created = row["event_created_at"]
    document = {
        "id": str(row["event_id"]),
        "type": row["event_type"],
        "created_at": created.isoformat() if hasattr(created, "isoformat") else str(created),
        "data": row["event_data"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


class WebhookSender:
    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.timeout = settings.webhook_timeout_s
        self.poll_s = settings.webhook_poll_seconds
        self.retry_base_s = settings.webhook_retry_base_s
        self.concurrency = settings.webhook_concurrency
        self.allow_private = settings.webhook_allow_private
        # One endpoint gets at most a quarter of the slots: a slow receiver holds those,
        # never the others' deliveries.
        self.per_endpoint = max(1, self.concurrency // 4)
        self.lease_s = self.timeout + 30.0
        self._per_endpoint: dict[Any, int] = {}
        self.wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,  # a redirect is an answer, not an invitation
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-sender")
        conninfo = self.db.pool.conninfo
        if isinstance(conninfo, str):
            self._listener = asyncio.create_task(self._listen(conninfo), name="webhook-listen")

    async def stop(self) -> None:
        for task in (self._listener, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._listener = None
        # Deliveries in flight are cut short; their leases run out and they are sent again.
        inflight = list(self._inflight)
        for task in inflight:
            task.cancel()
        if inflight:
            await asyncio.wait(inflight, timeout=5.0)
        await self._client.aclose()

    async def _listen(self, conninfo: str) -> None:
        """`webhook_enqueue` NOTIFYs `cp_webhooks` at commit: wake at once instead of at the
        next poll. Lost, it reconnects with backoff; the poll covers the gap."""
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    self.wake.set()
                    async for _ in conn.notifies():
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook listener lost; reconnecting", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        pruned_at = -PRUNE_EVERY_S
        while True:
            try:
                await self.claim_and_start()
                if loop.time() - pruned_at >= PRUNE_EVERY_S:
                    await self.db.execute(Q["events_prune"], {"days": RETENTION_DAYS})
                    pruned_at = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self.wake.wait()
            self.wake.clear()

    async def claim_and_start(self) -> int:
        """Claim due deliveries into the free slots, at most `per_endpoint` in flight for
        any one endpoint, and start them."""
        started = 0
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        busy = [e for e, n in self._per_endpoint.items() if n >= self.per_endpoint]
        due = await self.db.fetch_all(Q["due_endpoints"], {"busy": busy, "limit": free})
        for endpoint in due:
            free = self.concurrency - len(self._inflight)
            room = min(free, self.per_endpoint - self._per_endpoint.get(endpoint["endpoint_id"], 0))
            if free <= 0:
                break
            if room <= 0:
                continue
            rows = await self.db.fetch_all(
                Q["delivery_claim"],
                {"endpoint_id": endpoint["endpoint_id"], "lease": self.lease_s, "limit": room},
            )
            for row in rows:
                self._start(row)
            started += len(rows)
        return started

    def _start(self, row: dict[str, Any]) -> None:
        endpoint = row["endpoint_id"]
        self._per_endpoint[endpoint] = self._per_endpoint.get(endpoint, 0) + 1
        task = asyncio.create_task(self._deliver(row), name=f"webhook-{row['id']}")
        self._inflight.add(task)

        def finished(task: asyncio.Task[None]) -> None:
            self._inflight.discard(task)
            left = self._per_endpoint.get(endpoint, 1) - 1
            if left > 0:
                self._per_endpoint[endpoint] = left
            else:
                self._per_endpoint.pop(endpoint, None)
            self.wake.set()  # a slot is free: look for more at once

        task.add_done_callback(finished)

    async def _deliver(self, row: dict[str, Any]) -> None:
        try:
            await self._attempt(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery crashed", extra={"delivery": row["id"]})

    async def _attempt(self, row: dict[str, Any]) -> None:
        body = envelope(row)
        try:
            secret = open_secret(self.sealer, row["endpoint_id"], row["secret_sealed"])
        except SealError:
            await self._failed(row, None, "the endpoint's secret cannot be opened (key changed?)")
            return
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.header_value(secret, body),
            "Controlplane-Event-Id": str(row["event_id"]),
            "Controlplane-Event-Type": row["event_type"],
            "Controlplane-Delivery-Id": str(row["id"]),
        }
        status: int | None = None
        refusal = None if self.allow_private else await targets.resolved_refusal(row["url"])
        if refusal is not None:
            error: str | None = refusal  # retried like a refused connection: DNS may change
        else:
            try:
                response = await self._client.post(row["url"], content=body, headers=headers)
                status = response.status_code
                error = None if 200 <= status < 300 else f"HTTP {status}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        if error is None:
            await self.db.execute(Q["delivery_delivered"], {"id": row["id"], "status": status})
            log.info("webhook delivered", extra={"delivery": row["id"], "status": status})
            return
        if row["attempts"] >= MAX_ATTEMPTS:
            await self._failed(row, status, error)
            return
        delay = backoff(self.retry_base_s, row["attempts"])
        log.warning("webhook will be retried",
                    extra={"delivery": row["id"], "error": error, "delay": delay})  # fmt: skip
        await self.db.execute(
            Q["delivery_retry"],
            {"id": row["id"], "delay": delay, "status": status, "error": error},
        )

    async def _failed(self, row: dict[str, Any], status: int | None, error: str) -> None:
        log.error("webhook failed for good", extra={"delivery": row["id"], "error": error})
        await self.db.execute(
            Q["delivery_failed"], {"id": row["id"], "status": status, "error": error}
        )
