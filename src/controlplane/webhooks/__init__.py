"""Signed webhooks: operator-registered endpoints, an outbox of deliveries, the sender."""
