-- Change notifications for in-process caches. Every statement that changes one of these
-- tables (the read models the query API lists) sends, at its transaction's commit, a
-- notification on the channel `row_changes` whose payload is the table's name. Postgres
-- sends nothing for a transaction that rolls back (or a savepoint that is released by a
-- rollback), and folds identical notifications of one transaction into one.
--
-- The query API listens (`runtime::changes`): a cached page is served only while no
-- notification for its tables arrived since it was read, and only while the listening
-- connection is known to be alive. Triggers, not application code, so that no writer
-- (projector, rebuild, a migration, an operator's psql) can forget to tell.
--
-- The cost: Postgres commits the transactions that notified one at a time (a queue lock
-- held through the commit), about 3,000 a second on the development machine. Only the
-- projector's batch transactions notify, far fewer than that even while catching up;
-- no write of the command API does (`user_authority` has no trigger: authority is never
-- cached).

CREATE FUNCTION notify_row_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('row_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_view_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users_view
    FOR EACH STATEMENT EXECUTE FUNCTION notify_row_changes();
CREATE TRIGGER products_view_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products_view
    FOR EACH STATEMENT EXECUTE FUNCTION notify_row_changes();
CREATE TRIGGER product_review_stats_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON product_review_stats
    FOR EACH STATEMENT EXECUTE FUNCTION notify_row_changes();
CREATE TRIGGER orders_view_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orders_view
    FOR EACH STATEMENT EXECUTE FUNCTION notify_row_changes();
CREATE TRIGGER order_lines_view_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_lines_view
    FOR EACH STATEMENT EXECUTE FUNCTION notify_row_changes();
CREATE TRIGGER reviews_view_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reviews_view
    FOR EACH STATEMENT EXECUTE FUNCTION notify_row_changes();
