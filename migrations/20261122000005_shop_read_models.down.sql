-- The shop's read models go; `projector rebuild` fills them again from the event store.
DROP TABLE order_lines_view;
DROP TABLE orders_view;
DROP TABLE products_view;
