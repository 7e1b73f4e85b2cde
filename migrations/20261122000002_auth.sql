-- Write-side authentication data. Never part of an event, never in a read model.

CREATE TABLE credentials (
    user_id       UUID        PRIMARY KEY,
    password_hash TEXT        NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Refresh tokens are stored as SHA-256 hashes of 256-bit random secrets. A family is
-- the chain of rotations that started at one login; reuse of a rotated token revokes it.
CREATE TABLE refresh_tokens (
    id          UUID        PRIMARY KEY,
    family_id   UUID        NOT NULL,
    user_id     UUID        NOT NULL,
    token_hash  BYTEA       NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Public halves of the Ed25519 keys that sign access tokens. Each command-api process
-- publishes its key here; verifiers (query-api, workers) trust what is listed.
CREATE TABLE signing_keys (
    kid            TEXT        PRIMARY KEY,
    algorithm      TEXT        NOT NULL,
    public_key_pem TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
