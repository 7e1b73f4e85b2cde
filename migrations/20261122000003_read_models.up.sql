-- Read models built by the projector. Each row carries the stream version it reflects,
-- changed in the same transaction as the row: that is the projection's checkpoint.

CREATE TABLE users_view (
    id         UUID        PRIMARY KEY,
    email      TEXT,
    name       TEXT,
    role       TEXT        NOT NULL,
    version    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- Deleted users stay as erased tombstones (no email, no name) so that a replayed
    -- older event can never bring them back.
    deleted_at TIMESTAMPTZ
);

CREATE INDEX users_view_created_idx ON users_view (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_view_name_idx ON users_view (name, id) WHERE deleted_at IS NULL;
CREATE INDEX users_view_email_idx ON users_view (email, id) WHERE deleted_at IS NULL;
CREATE INDEX users_view_role_idx ON users_view (role) WHERE deleted_at IS NULL;
