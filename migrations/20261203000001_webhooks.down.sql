-- Keeps the endpoints (with their secrets), deliveries and attempts: set aside, not
-- dropped; the up migration takes them back.
ALTER TABLE webhook_attempts RENAME TO webhook_attempts_archived;
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_archived;
ALTER TABLE webhooks RENAME TO webhooks_archived;
