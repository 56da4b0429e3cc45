"""Stripe billing: tiers with limits, checkout, customer portal, webhooks, grace periods.

tiers.py       tier definitions, read from the system settings (`billing_tiers`)
standing.py    a user's tier and hold, derived from their subscriptions
limits.py      `create_tenant_within_tier`: the tier check and the insert, under one lock
holds.py       suspend / resume a user's tenants to match their standing (by="billing")
webhooks.py    signature check, exactly-once processing, out-of-order-safe updates
service.py     checkout, portal and status for a signed-in user
stripe_api.py  the one adapter over the `stripe` SDK
sweep.py       the start hook and the periodic sweep (grace periods running out)
routes.py      /api/v1/billing/* and /api/v1/stripe/webhook
"""
