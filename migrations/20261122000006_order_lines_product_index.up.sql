-- The projector counts a product's units in placed orders when the product row is
-- created; without this index that count scans every order line.
CREATE INDEX order_lines_view_product_idx ON order_lines_view (product_id);
