-- Webhooks: endpoints that admins register for subscribers without NATS, the deliveries
-- the workers make to them (one per endpoint and event) and every attempt of each.
-- Configuration, not events: the event store stays the record of the domain. A revert
-- keeps the endpoints and their history (the down migration renames the tables aside);
-- applying again brings them back.
ALTER TABLE IF EXISTS webhooks_archived RENAME TO webhooks;
ALTER TABLE IF EXISTS webhook_deliveries_archived RENAME TO webhook_deliveries;
ALTER TABLE IF EXISTS webhook_attempts_archived RENAME TO webhook_attempts;

CREATE TABLE IF NOT EXISTS webhooks (
    id                   UUID        PRIMARY KEY,
    url                  TEXT        NOT NULL,
    event_types          TEXT[]      NOT NULL,
    description          TEXT,
    -- Needed as is to sign every delivery (HMAC), so it cannot be stored hashed; it is
    -- shown once, when the endpoint is registered or its secret rotated.
    secret               TEXT        NOT NULL,
    enabled              BOOLEAN     NOT NULL DEFAULT true,
    disabled_reason      TEXT,
    disabled_at          TIMESTAMPTZ,
    consecutive_failures INT         NOT NULL DEFAULT 0,
    -- Events after this position are delivered; earlier ones only by a replay.
    start_position       BIGINT      NOT NULL,
    version              BIGINT      NOT NULL DEFAULT 1,
    created_by           UUID,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               UUID        PRIMARY KEY,
    webhook_id       UUID        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         UUID        NOT NULL,
    event_type       TEXT        NOT NULL,
    position         BIGINT      NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INT         NOT NULL DEFAULT 0,
    -- When it is due; while an attempt runs, when that attempt's claim runs out.
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status_code INT,
    last_error       TEXT,
    last_duration_ms INT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    UNIQUE (webhook_id, event_id)
);

-- The dispatcher's claim: each endpoint's due deliveries, soonest first.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id          UUID        PRIMARY KEY,
    delivery_id UUID        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INT         NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    duration_ms INT         NOT NULL,
    status_code INT,
    error       TEXT
);

CREATE INDEX IF NOT EXISTS webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, started_at);
