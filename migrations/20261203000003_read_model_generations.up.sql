-- Generations of the read models, for rebuilds without downtime (projector::generations).
-- A generation is one full set of the projector's tables plus the Redis key space of its
-- documents. The live one has its tables in `public`, where every reader and the live
-- projector find them; a rebuild builds the next one in the schema `rm_g<generation>`,
-- catches it up, checks it and swaps the two in one transaction; the one swapped out
-- keeps its tables in `rm_g<generation>` for a rollback until an operator drops it.
-- A revert renames these tables aside; applying again brings them back.
ALTER TABLE IF EXISTS read_model_generations_archived RENAME TO read_model_generations;
ALTER TABLE IF EXISTS projection_rebuilds_archived RENAME TO projection_rebuilds;

CREATE TABLE IF NOT EXISTS read_model_generations (
    generation  BIGINT      PRIMARY KEY,
    -- Redis documents live under `<prefix>` (key space 1) or `<prefix>:k<keyspace>`;
    -- every activation takes a fresh one, so no document of an earlier life is read.
    keyspace    BIGINT      NOT NULL UNIQUE,
    state       TEXT        NOT NULL CHECK (state IN ('building', 'live', 'retired', 'dropped', 'failed')),
    -- the event-store position its tables reflect, set when it is swapped out
    position    BIGINT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    live_since  TIMESTAMPTZ,
    retired_at  TIMESTAMPTZ
);

CREATE UNIQUE INDEX IF NOT EXISTS read_model_generations_one_live ON read_model_generations ((true)) WHERE state = 'live';

-- The tables that exist before any rebuild are generation 1, under the plain prefix.
INSERT INTO read_model_generations (generation, keyspace, state, live_since)
SELECT 1, 1, 'live', now() WHERE NOT EXISTS (SELECT 1 FROM read_model_generations);

-- Rebuilds (and rollbacks, which make a retired generation live again): one row each,
-- with its phase and progress, which operators follow from the console and the CLI.
CREATE TABLE IF NOT EXISTS projection_rebuilds (
    id            UUID        PRIMARY KEY,
    -- rebuild (a new generation from the event store) or activate (a retired one, caught up)
    kind          TEXT        NOT NULL CHECK (kind IN ('rebuild', 'activate')),
    generation    BIGINT      NOT NULL,
    from_generation BIGINT    NOT NULL,
    actor_id      UUID        NOT NULL,
    reason        TEXT,
    status        TEXT        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    phase         TEXT        NOT NULL DEFAULT 'preparing',
    events_total  BIGINT      NOT NULL DEFAULT 0,
    events_done   BIGINT      NOT NULL DEFAULT 0,
    -- the counts compared before the swap, per projection
    checks        JSONB,
    error         TEXT,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);

CREATE UNIQUE INDEX IF NOT EXISTS projection_rebuilds_one_running ON projection_rebuilds ((true)) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS projection_rebuilds_started_idx ON projection_rebuilds (started_at DESC, id DESC);
