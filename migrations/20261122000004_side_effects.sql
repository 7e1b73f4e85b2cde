-- Side effects carried out by the workers (emails, ...), one row per (event, effect):
-- the de-duplication that makes at-least-once delivery send once.
CREATE TABLE side_effects (
    event_id     UUID        NOT NULL,
    effect       TEXT        NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, effect)
);

-- Messages whose side effect failed on every attempt, for operators to inspect,
-- retry or discard.
CREATE TABLE dead_letters (
    id          UUID        PRIMARY KEY,
    event_id    UUID        NOT NULL,
    effect      TEXT        NOT NULL,
    subject     TEXT        NOT NULL,
    event       JSONB       NOT NULL,
    error       TEXT        NOT NULL,
    attempts    INT         NOT NULL,
    status      TEXT        NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'resolved', 'discarded')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, effect)
);

CREATE INDEX dead_letters_status_idx ON dead_letters (status, created_at);
