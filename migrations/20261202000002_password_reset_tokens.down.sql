-- Outstanding reset links stop working; the events that asked for them stay.
DROP TABLE password_reset_tokens;
