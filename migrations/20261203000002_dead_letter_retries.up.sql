-- Bulk retries of dead letters ("retry all that match"): one row per run, with its filter
-- and progress, so operators follow it (rate, ETA) from the console and the CLI. Each
-- dead letter retried is also in operator_actions. A record of runs only: reversible.
CREATE TABLE dead_letter_retries (
    id         UUID        PRIMARY KEY,
    actor_id   UUID        NOT NULL,
    filter     JSONB       NOT NULL,
    reason     TEXT,
    -- running, done, or failed (stopped by an error; what is left is still dead)
    status     TEXT        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    -- the dead letters matching when it started (later ones are not taken)
    total      BIGINT      NOT NULL DEFAULT 0,
    processed  BIGINT      NOT NULL DEFAULT 0,
    resolved   BIGINT      NOT NULL DEFAULT 0,
    failed     BIGINT      NOT NULL DEFAULT 0,
    last_error TEXT,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);

CREATE INDEX dead_letter_retries_started_idx ON dead_letter_retries (started_at DESC, id DESC);
