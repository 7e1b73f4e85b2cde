-- Reverts 20261202000001_change_notifications.up.sql: no more change notifications. The
-- query API then never goes live on its change feed and reads every list from Postgres.

DROP TRIGGER IF EXISTS users_view_changes ON users_view;
DROP TRIGGER IF EXISTS products_view_changes ON products_view;
DROP TRIGGER IF EXISTS product_review_stats_changes ON product_review_stats;
DROP TRIGGER IF EXISTS orders_view_changes ON orders_view;
DROP TRIGGER IF EXISTS order_lines_view_changes ON order_lines_view;
DROP TRIGGER IF EXISTS reviews_view_changes ON reviews_view;
DROP TRIGGER IF EXISTS user_authority_changes ON user_authority;
DROP FUNCTION IF EXISTS notify_row_changes();
