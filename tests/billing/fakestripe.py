"""A small stand-in for the few Stripe HTTP endpoints billing calls, for tests.

A stdlib HTTP server on 127.0.0.1 and an ephemeral port, in a thread of its own. It parses
the SDK's form-encoded bodies, records every request (path, flat form params, idempotency
key), replays the stored answer for a repeated idempotency key as Stripe does, and answers
errors in Stripe's JSON shape so the SDK raises its typed exceptions.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    authorization: str | None


@dataclass
class FakeStripe:
    api_key: str
    prices: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (status, error type, message, Stripe-Should-Retry) answered to the next requests
    fail_next: list[tuple[int, str, str, bool]] = field(default_factory=list)
    _idem: dict[tuple[str, str], tuple[dict[str, str], int, dict[str, Any]]] = field(
        default_factory=dict
    )
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def posts(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    # -- the endpoints -------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict]:
        if method != "POST":
            return _error(404, "invalid_request_error", f"Unrecognized request URL ({path})")
        n = next(self._ids)
        if path == "/v1/customers":
            cid = f"cus_fake{n}"
            customer = {
                "id": cid,
                "object": "customer",
                "email": params.get("email"),
                "metadata": {"user_id": params.get("metadata[user_id]")},
            }
            self.customers[cid] = customer
            return 200, customer
        if path == "/v1/checkout/sessions":
            price = params.get("line_items[0][price]")
            if price not in self.prices:
                return _error(400, "invalid_request_error", f"No such price: '{price}'")
            if params.get("customer") not in self.customers:
                return _error(
                    400, "invalid_request_error", f"No such customer: '{params.get('customer')}'"
                )
            sid = f"cs_test_fake{n}"
            return 200, {
                "id": sid,
                "object": "checkout.session",
                "mode": params.get("mode"),
                "customer": params.get("customer"),
                "url": f"https://checkout.stripe.test/c/pay/{sid}",
            }
        if path == "/v1/billing_portal/sessions":
            if params.get("customer") not in self.customers:
                return _error(
                    400, "invalid_request_error", f"No such customer: '{params.get('customer')}'"
                )
            sid = f"bps_fake{n}"
            return 200, {
                "id": sid,
                "object": "billing_portal.session",
                "customer": params["customer"],
                "return_url": params.get("return_url"),
                "url": f"https://billing.stripe.test/p/session/{sid}",
            }
        return _error(404, "invalid_request_error", f"Unrecognized request URL (POST: {path})")

    def dispatch(self, rec: Recorded) -> tuple[int, dict, dict[str, str]]:
        with self._lock:
            self.requests.append(rec)
            if rec.authorization != f"Bearer {self.api_key}":
                return (*_error(401, "invalid_request_error", "Invalid API Key provided"), {})
            if self.fail_next:
                status, kind, message, retry = self.fail_next.pop(0)
                retry_header = {"Stripe-Should-Retry": "true" if retry else "false"}
                return (*_error(status, kind, message), retry_header)
            key = (rec.path, rec.idempotency_key) if rec.idempotency_key else None
            if key is not None and key in self._idem:
                params, status, body = self._idem[key]
                if params != rec.params:
                    return (
                        *_error(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters",
                        ),
                        {},
                    )
                return status, body, {"Idempotent-Replayed": "true"}
            status, body = self.handle(rec.method, rec.path, rec.params)
            if key is not None:
                self._idem[key] = (rec.params, status, body)
            return status, body, {}


def _error(status: int, kind: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"type": kind, "message": message}}


def serve(fake: FakeStripe) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            rec = Recorded(
                method=self.command,
                path=self.path.split("?", 1)[0],
                params=dict(parse_qsl(body, keep_blank_values=True)),
                idempotency_key=self.headers.get("Idempotency-Key"),
                authorization=self.headers.get("Authorization"),
            )
            status, payload, extra = fake.dispatch(rec)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="fake-stripe", daemon=True).start()
    return server
