-- name: account_lock
-- The user's billing row, created when missing, locked until the transaction ends: every
-- billing decision about one user (tier check + tenant insert, a webhook's effects, the
-- sweep) takes this lock first, so they happen one after the other.
INSERT INTO billing_accounts (user_id) VALUES (%(user_id)s)
ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id
RETURNING *

-- name: account_get
SELECT * FROM billing_accounts WHERE user_id = %(user_id)s

-- name: account_by_customer_lock
SELECT * FROM billing_accounts WHERE stripe_customer_id = %(customer)s FOR UPDATE

-- name: account_set_customer
-- Keep the first customer stored: concurrent checkouts send the same idempotency key, so
-- Stripe gave them the same customer anyway.
INSERT INTO billing_accounts (user_id, stripe_customer_id)
VALUES (%(user_id)s, %(customer)s)
ON CONFLICT (user_id) DO UPDATE
SET stripe_customer_id = coalesce(billing_accounts.stripe_customer_id, excluded.stripe_customer_id),
    updated_at = now()
RETURNING stripe_customer_id

-- name: account_set_hold
UPDATE billing_accounts
SET on_hold = %(hold)s, hold_reason = %(reason)s, updated_at = now()
WHERE user_id = %(user_id)s
  AND (on_hold, hold_reason) IS DISTINCT FROM (%(hold)s, %(reason)s::text)
RETURNING on_hold

-- name: usage
-- What counts against a tier: the user's tenants that are not being deleted.
SELECT count(*) AS tenants, coalesce(sum(ram_mb), 0)::bigint AS ram_mb
FROM tenants
WHERE owner_user_id = %(user_id)s AND status NOT IN ('deleting', 'deleted')

-- name: subscriptions_of_user
-- Newest first. `entitled`: paid, and active (or past due within the grace period).
SELECT s.*,
       (s.paid_at IS NOT NULL AND (
            s.status IN ('active', 'trialing')
            OR (s.status = 'past_due'
                AND s.past_due_since + make_interval(secs => %(grace_s)s) > now())
       )) AS entitled,
       CASE WHEN s.status = 'past_due'
            THEN s.past_due_since + make_interval(secs => %(grace_s)s) END AS grace_until
FROM billing_subscriptions s
WHERE s.user_id = %(user_id)s
ORDER BY s.status_at DESC, s.id

-- name: subscription_apply
-- A subscription object from an event created at %(at)s. Applied only if no newer event has
-- been applied (ties: the later arrival wins); a canceled or expired subscription never comes
-- back; `incomplete` (before the first payment) never overrides a paid subscription.
INSERT INTO billing_subscriptions AS s
    (id, user_id, customer_id, status, price_id, current_period_end, status_at, past_due_since)
VALUES (%(id)s, %(user_id)s, %(customer)s, %(status)s, %(price)s,
        to_timestamp(%(period_end)s::double precision), %(at)s::bigint,
        CASE WHEN %(status)s = 'past_due' THEN to_timestamp(%(at)s::double precision) END)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    price_id = coalesce(excluded.price_id, s.price_id),
    current_period_end = coalesce(excluded.current_period_end, s.current_period_end),
    status_at = excluded.status_at,
    past_due_since = CASE WHEN excluded.status <> 'past_due' THEN NULL
                          WHEN s.status = 'past_due' THEN s.past_due_since
                          ELSE excluded.past_due_since END,
    updated_at = now()
WHERE s.status_at <= excluded.status_at
  AND s.status NOT IN ('canceled', 'incomplete_expired')
  AND NOT (excluded.status = 'incomplete' AND (s.paid_at IS NOT NULL OR s.status <> 'incomplete'))
RETURNING *

-- name: subscription_paid
-- An invoice of the subscription was paid by an event created at %(at)s: the tier is granted
-- from now on, and the subscription is active again unless a newer event said otherwise.
INSERT INTO billing_subscriptions AS s
    (id, user_id, customer_id, status, price_id, status_at, paid_at)
VALUES (%(id)s, %(user_id)s, %(customer)s, 'active', %(price)s, %(at)s::bigint, %(at)s::bigint)
ON CONFLICT (id) DO UPDATE SET
    paid_at = greatest(s.paid_at, excluded.paid_at),
    price_id = coalesce(s.price_id, excluded.price_id),
    status = CASE WHEN s.status_at <= excluded.status_at
                       AND s.status NOT IN ('canceled', 'incomplete_expired')
                  THEN 'active' ELSE s.status END,
    past_due_since = CASE WHEN s.status_at <= excluded.status_at
                               AND s.status NOT IN ('canceled', 'incomplete_expired')
                          THEN NULL ELSE s.past_due_since END,
    status_at = greatest(s.status_at, excluded.status_at),
    updated_at = now()
RETURNING *

-- name: event_insert
-- Each event id once; a redelivery finds the row (or waits for the first delivery's
-- transaction to commit) and inserts nothing.
INSERT INTO stripe_events (id, type, created, outcome)
VALUES (%(id)s, %(type)s, %(created)s, 'processing')
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: event_outcome
UPDATE stripe_events SET outcome = %(outcome)s, user_id = %(user_id)s WHERE id = %(id)s

-- name: tenants_on_hold
-- The user's tenants that count against a tier, each marked `excess` when billing holds
-- it: all of them (policy `all`), or those beyond the free tier's limits, keeping the
-- oldest that fit (a prefix by age), so the newest go first.
SELECT id, status, suspended_by,
       %(all)s OR count(*) OVER w > %(max_tenants)s OR sum(ram_mb) OVER w > %(max_ram)s
           AS excess
FROM tenants
WHERE owner_user_id = %(user_id)s AND status NOT IN ('deleting', 'deleted')
WINDOW w AS (ORDER BY created_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY created_at DESC, id DESC

-- name: tenants_to_resume
SELECT id FROM tenants
WHERE owner_user_id = %(user_id)s AND status = 'suspended' AND suspended_by = 'billing'
ORDER BY id

-- name: sweep_candidates
-- Users whose hold is out of date (a grace period ran out, a payment came in) or whose
-- tenants do not match it yet (a tenant became active while on hold; one billing suspended
-- finished suspending after the payment).
WITH st AS (
    SELECT a.user_id, a.on_hold,
           EXISTS (SELECT 1 FROM billing_subscriptions s
                   WHERE s.user_id = a.user_id AND s.paid_at IS NOT NULL
                     AND (s.status IN ('active', 'trialing')
                          OR (s.status = 'past_due'
                              AND s.past_due_since + make_interval(secs => %(grace_s)s) > now())))
               AS entitled,
           EXISTS (SELECT 1 FROM billing_subscriptions s
                   WHERE s.user_id = a.user_id AND s.paid_at IS NOT NULL) AS ever_paid
    FROM billing_accounts a
), ranked AS (
    -- As tenants_on_hold, for every user at once.
    SELECT t.owner_user_id, t.status, t.suspended_by,
           %(all)s OR count(*) OVER w > %(max_tenants)s OR sum(t.ram_mb) OVER w > %(max_ram)s
               AS excess
    FROM tenants t
    WHERE t.owner_user_id IS NOT NULL AND t.status NOT IN ('deleting', 'deleted')
    WINDOW w AS (PARTITION BY t.owner_user_id ORDER BY t.created_at, t.id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT user_id FROM st
WHERE on_hold <> (ever_paid AND NOT entitled)
   OR (on_hold AND EXISTS (SELECT 1 FROM ranked r
                           WHERE r.owner_user_id = st.user_id
                             AND ((r.excess AND r.status = 'active')
                                  OR (NOT r.excess AND r.status = 'suspended'
                                      AND r.suspended_by = 'billing'))))
   OR (NOT on_hold AND EXISTS (SELECT 1 FROM tenants t
                               WHERE t.owner_user_id = st.user_id AND t.status = 'suspended'
                                 AND t.suspended_by = 'billing'))
ORDER BY user_id
LIMIT %(limit)s

-- name: events_prune
-- Stripe retries an event for up to three days; ids older than the retention are no longer
-- needed to recognise a redelivery (and replaying an old event is stale anyway).
DELETE FROM stripe_events WHERE received_at < now() - make_interval(days => %(days)s)
