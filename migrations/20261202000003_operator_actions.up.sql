-- Every operator action on the workers (a dead letter retried or discarded): who, when,
-- what, why, and how it ended. A revert keeps the record (the down migration renames the
-- table aside); applying again brings it back.
ALTER TABLE IF EXISTS operator_actions_archived RENAME TO operator_actions;

CREATE TABLE IF NOT EXISTS operator_actions (
    id         UUID        PRIMARY KEY,
    actor_id   UUID        NOT NULL,
    action     TEXT        NOT NULL,
    target     TEXT        NOT NULL,
    reason     TEXT,
    outcome    TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS operator_actions_at_idx ON operator_actions (at DESC, id DESC);
