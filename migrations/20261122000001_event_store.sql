-- The event store: the source of truth. Every other table is derived from it or
-- written in the same transaction as it.

CREATE TABLE events (
    -- Global order of commit *attempts*. Positions are handed out before commit, so a
    -- reader must never poll "position > last seen": see the outbox below.
    position       BIGSERIAL PRIMARY KEY,
    id             UUID        NOT NULL UNIQUE,
    stream_type    TEXT        NOT NULL,
    stream_id      UUID        NOT NULL,
    stream_version BIGINT      NOT NULL CHECK (stream_version > 0),
    event_type     TEXT        NOT NULL,
    schema_version INT         NOT NULL CHECK (schema_version > 0),
    data           JSONB       NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    correlation_id TEXT,
    causation_id   TEXT,
    actor_id       UUID,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_stream_type_position_idx ON events (stream_type, position);

-- One row per committed event not yet acknowledged by JetStream. Written in the
-- append transaction, deleted by the relay once JetStream acked the publish. The
-- relay reads "rows that exist", never "positions after X", so an event whose
-- transaction commits late is simply found on a later pass.
CREATE TABLE outbox (
    position   BIGINT      PRIMARY KEY REFERENCES events (position),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Set-based invariants (one email per account, ...) claimed in the append transaction.
CREATE TABLE unique_claims (
    kind       TEXT        NOT NULL,
    value      TEXT        NOT NULL,
    owner_id   UUID        NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

CREATE INDEX unique_claims_owner_idx ON unique_claims (owner_id);

-- First answers to POSTs sent with an Idempotency-Key, stored with the events they caused.
CREATE TABLE idempotency_keys (
    scope        TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    status_code  SMALLINT    NOT NULL,
    body         JSONB       NOT NULL,
    etag         TEXT,
    location     TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
