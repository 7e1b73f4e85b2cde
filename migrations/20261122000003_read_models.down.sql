-- The users read model goes; `projector rebuild` fills it again from the event store.
DROP TABLE users_view;
