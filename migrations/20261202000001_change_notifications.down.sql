-- Reverts 20261202000001_change_notifications.up.sql: no more change notifications. The
-- query API's change feed then finds no told table, and every list is read from Postgres.

DROP TRIGGER IF EXISTS users_view_changes ON users_view;
DROP TRIGGER IF EXISTS products_view_changes ON products_view;
DROP TRIGGER IF EXISTS product_review_stats_changes ON product_review_stats;
DROP TRIGGER IF EXISTS orders_view_changes ON orders_view;
DROP TRIGGER IF EXISTS order_lines_view_changes ON order_lines_view;
DROP TRIGGER IF EXISTS reviews_view_changes ON reviews_view;
DROP FUNCTION IF EXISTS notify_row_changes();
