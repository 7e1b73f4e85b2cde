-- Keeps what operators did: the record is set aside, not dropped (the up migration takes
-- it back).
ALTER TABLE operator_actions RENAME TO operator_actions_archived;
