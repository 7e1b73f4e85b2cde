-- What each live user may do now, on the write side: one row per user that exists and
-- is not deleted, with their current role. Changed in the same transaction as the
-- `user.registered`, `user.role_changed` and `user.deleted` events, so it is exactly as
-- current as the event store (no projection lag). Both APIs read it by primary key to
-- check a caller's authority; a token only proves who the caller is.

CREATE TABLE user_authority (
    user_id    UUID        PRIMARY KEY,
    role       TEXT        NOT NULL CHECK (role IN ('user', 'admin')),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Users that existed before this table: the role of their latest registered or
-- role-changed event, unless they were deleted.
INSERT INTO user_authority (user_id, role)
SELECT DISTINCT ON (e.stream_id) e.stream_id, e.data ->> 'role'
FROM events e
WHERE e.stream_type = 'user'
  AND e.event_type IN ('user.registered', 'user.role_changed')
  AND NOT EXISTS (
      SELECT 1 FROM events d
      WHERE d.stream_id = e.stream_id AND d.event_type = 'user.deleted'
  )
ORDER BY e.stream_id, e.stream_version DESC;
