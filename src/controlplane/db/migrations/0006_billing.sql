-- Billing (Stripe): a user's Stripe customer, their subscriptions as Stripe last described
-- them, and every webhook event id processed (exactly once, with its effects).

-- One row per user who has touched billing. Creating a tenant locks this row, so a user's
-- tier check and the insert of the tenant are serialised (two concurrent creates cannot
-- both pass). `on_hold`: billing has suspended (or is suspending) this user's tenants.
CREATE TABLE billing_accounts (
    user_id             uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    stripe_customer_id  text,
    on_hold             boolean NOT NULL DEFAULT false,
    hold_reason         text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_accounts_customer_key UNIQUE (stripe_customer_id)
);

-- A subscription as its newest event described it. `status_at` is the `created` (Unix
-- seconds) of the event that set `status`: an older event never overwrites a newer one.
-- `paid_at` is the `created` of the newest paid-invoice event: a tier is granted only once
-- an invoice of the subscription has been paid.
CREATE TABLE billing_subscriptions (
    id                  text PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    customer_id         text NOT NULL,
    status              text NOT NULL,
    price_id            text,
    current_period_end  timestamptz,
    status_at           bigint NOT NULL,
    paid_at             bigint,
    past_due_since      timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_subscriptions_user ON billing_subscriptions (user_id);
CREATE INDEX billing_subscriptions_past_due ON billing_subscriptions (past_due_since)
    WHERE status = 'past_due';

-- Each Stripe event id once. Inserted in the same transaction as the event's effects, so a
-- redelivered event is recognised and does nothing.
CREATE TABLE stripe_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    created      bigint NOT NULL,
    user_id      uuid,
    outcome      text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_received ON stripe_events (received_at);
