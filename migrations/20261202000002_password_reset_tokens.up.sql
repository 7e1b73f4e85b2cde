-- Single-use links that set a password (`POST /api/v1/passwords/reset`). The workers make
-- one for each `user.password_reset_requested` event and email it; only its SHA-256 is
-- stored, so neither this table nor the event store can give a link away. A retried
-- email replaces the token of its event (the unsent one dies with it). Confirming marks
-- the row used in the same statement that checks it, so a token works once.

CREATE TABLE password_reset_tokens (
    event_id   UUID        PRIMARY KEY,
    token_hash BYTEA       NOT NULL UNIQUE,
    user_id    UUID        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);
