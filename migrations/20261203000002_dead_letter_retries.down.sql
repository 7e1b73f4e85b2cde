-- Removes the record of bulk retries; each retry stays in operator_actions.
DROP TABLE dead_letter_retries;
