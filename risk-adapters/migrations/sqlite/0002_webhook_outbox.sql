-- The webhook outbox: the events the signal service raises (an account's risk level rising,
-- its score passing a threshold). A row is written in the same transaction as the stored
-- result that raised it, so a committed result never loses its event; the webhook
-- dispatcher reads rows in `id` order and delivers each to the matching subscriptions.
-- `event_id` is the Standard Webhooks `webhook-id` (`msg_...`), the same on every attempt.
-- `level` is the account's level the event reports (LOW, MEDIUM, HIGH or CRITICAL), which
-- a subscription's `min_level` is compared with; `payload` is the JSON `data` object.

CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    account_login TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
