"""The one adapter over Stripe's HTTP API (the official `stripe` SDK, async calls only).

    BillingError
     ├── StripeRefused       Stripe answered with an error (bad price, bad customer) -> 502
     └── StripeUnavailable   Stripe could not be reached or failed -> 503

Built once per process by the billing start hook (`STRIPE_API_BASE` points it elsewhere in
tests) and closed on shutdown. Every POST carries an idempotency key chosen by the caller.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from controlplane.config import Settings

if TYPE_CHECKING:
    import stripe

log = logging.getLogger(__name__)


class BillingError(Exception):
    """Base of the billing adapter's exceptions."""


class StripeRefused(BillingError):
    """Stripe answered with an error; the message is Stripe's."""


class StripeUnavailable(BillingError):
    """Stripe could not be reached, or failed on its side."""


def _httpx_client(timeout: httpx.Timeout) -> Any:
    # The SDK is imported when a gateway is built (STRIPE_SECRET_KEY set), not when the app
    # is: it is ~5 MB and ~50 ms of start-up that most deployments never use.
    import stripe

    class _HttpxClient(stripe.HTTPXClient):  # type: ignore[misc]
        """The SDK's httpx client, sending the form body as `content=`.

        stripe 16.1.0 passes the encoded body as `data=<str>`, which httpx 0.28 deprecates with
        a DeprecationWarning on every call (an error under `-W error`).
        """

        def _get_request_args_kwargs(
            self, method: str, url: str, headers: Any, post_data: Any
        ) -> list[Any]:
            args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
            data = kwargs.pop("data", None)
            if data:
                kwargs["content"] = data
            return [args, kwargs]

    return _HttpxClient(timeout=timeout)


class StripeGateway:
    def __init__(
        self,
        secret_key: str,
        *,
        api_base: str = "https://api.stripe.com",
        timeout: float = 20.0,
        max_network_retries: int = 2,
    ) -> None:
        import stripe

        self._http = _httpx_client(httpx.Timeout(timeout, connect=5.0))
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> StripeGateway:
        assert settings.stripe_secret_key is not None
        return cls(
            settings.stripe_secret_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            **kwargs,
        )

    async def close(self) -> None:
        await self._http.close_async()

    async def create_customer(self, *, email: str, user_id: str, idempotency_key: str) -> str:
        customer = await self._call(
            self._client.v1.customers.create_async,
            {"email": email, "metadata": {"user_id": user_id}},
            idempotency_key,
        )
        return str(customer.id)

    async def create_checkout_session(
        self,
        *,
        customer: str,
        price: str,
        user_id: str,
        tier: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> tuple[str, str]:
        """A subscription Checkout Session; returns (id, url)."""
        session = await self._call(
            self._client.v1.checkout.sessions.create_async,
            {
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": user_id,
                "line_items": [{"price": price, "quantity": 1}],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "metadata": {"user_id": user_id, "tier": tier},
                "subscription_data": {"metadata": {"user_id": user_id, "tier": tier}},
            },
            idempotency_key,
        )
        return str(session.id), str(session.url)

    async def create_portal_session(
        self, *, customer: str, return_url: str, idempotency_key: str
    ) -> str:
        session = await self._call(
            self._client.v1.billing_portal.sessions.create_async,
            {"customer": customer, "return_url": return_url},
            idempotency_key,
        )
        return str(session.url)

    async def _call(self, method: Any, params: dict[str, Any], idempotency_key: str) -> Any:
        import stripe

        try:
            return await method(params=params, options={"idempotency_key": idempotency_key})
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise StripeUnavailable(f"Stripe could not be reached: {_message(exc)}") from None
        except stripe.AuthenticationError as exc:
            log.error("Stripe refused our secret key: %s", _message(exc))
            raise StripeUnavailable("Stripe refused the configured secret key") from None
        except stripe.APIError as exc:
            raise StripeUnavailable(f"Stripe failed: {_message(exc)}") from None
        except stripe.StripeError as exc:
            raise StripeRefused(f"Stripe refused the request: {_message(exc)}") from None


def _message(exc: stripe.StripeError) -> str:
    text = exc.user_message or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]
