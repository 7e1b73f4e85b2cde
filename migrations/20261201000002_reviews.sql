-- Product reviews.
--
-- Write side: who bought what. Changed in the same unit of work as `order.placed` and
-- `order.cancelled`, so that "only a buyer may review" is decided on committed orders,
-- not on a read model that may lag. Filled here from the orders already in the store.
CREATE TABLE purchases (
    order_id   UUID NOT NULL,
    product_id UUID NOT NULL,
    user_id    UUID NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX purchases_buyer_idx ON purchases (user_id, product_id);

INSERT INTO purchases (order_id, product_id, user_id)
SELECT placed.stream_id, (line ->> 'productId')::uuid, (placed.data ->> 'userId')::uuid
FROM events placed
CROSS JOIN LATERAL jsonb_array_elements(placed.data -> 'lines') AS line
WHERE placed.event_type = 'order.placed'
  AND NOT EXISTS (
      SELECT 1 FROM events cancelled
      WHERE cancelled.stream_id = placed.stream_id AND cancelled.event_type = 'order.cancelled')
ON CONFLICT DO NOTHING;

-- Read models, built by the projector: one row per live review (the row carries the
-- stream version it reflects), and each product's count and rating sum, changed in the
-- same transaction as the reviews.
CREATE TABLE reviews_view (
    id         UUID        PRIMARY KEY,
    product_id UUID        NOT NULL,
    author_id  UUID        NOT NULL,
    rating     SMALLINT    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT,
    deleted    BOOLEAN     NOT NULL DEFAULT false,
    version    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX reviews_view_product_created_idx ON reviews_view (product_id, created_at, id) WHERE NOT deleted;
CREATE INDEX reviews_view_product_rating_idx ON reviews_view (product_id, rating, id) WHERE NOT deleted;

-- (No CHECK on the sums: the projector adds signed differences with an upsert, whose
-- proposed row carries the difference itself.)
CREATE TABLE product_review_stats (
    product_id   UUID   PRIMARY KEY,
    review_count BIGINT NOT NULL DEFAULT 0,
    rating_sum   BIGINT NOT NULL DEFAULT 0,
    -- Review events applied to these numbers: part of the product's ETag on the query
    -- API, since they change without the product's stream version changing.
    version      BIGINT NOT NULL DEFAULT 0
);
