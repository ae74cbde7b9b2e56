-- Webhook delivery: the subscriptions, the fan-out position in `webhook_outbox`, one
-- delivery per (event, subscription) with its retry state and lease, and every attempt.
-- Scheduling times (`next_attempt_at`, `lease_until`, `gap_since`) are Unix milliseconds,
-- so both backends compare them as integers; record times are timestamps.

CREATE TABLE webhook_subscriptions (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL,
    -- `whsec_` + base64; never returned by the API.
    secret TEXT NOT NULL,
    min_level TEXT NOT NULL CHECK (min_level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    -- A JSON array of event type names.
    event_types JSONB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Every outbox row with `id <= upto` has been fanned out. Rows above it that were fanned
-- out already are listed in `webhook_fanned_out` (an id below them may still be in an open
-- transaction). `gap_since` is when the dispatcher first saw the id after `upto` missing
-- while later ones were present; after a grace period the missing id is taken to be a
-- rolled-back one and skipped.
CREATE TABLE webhook_fanout (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto BIGINT NOT NULL,
    gap_since BIGINT
);
INSERT INTO webhook_fanout (id, upto, gap_since) VALUES (1, 0, NULL);

CREATE TABLE webhook_fanned_out (
    outbox_id BIGINT PRIMARY KEY
);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    outbox_id BIGINT NOT NULL REFERENCES webhook_outbox (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead_lettered')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- The claim of the dispatcher sending it; another may take it once `lease_until` passed.
    lease_owner TEXT,
    lease_until BIGINT,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (outbox_id, subscription_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);

CREATE TABLE webhook_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed', 'dead_lettered'))
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
