-- Read models of the shop, built by the projector. Each row carries the stream version
-- it reflects, changed in the same transaction as the row (the projection checkpoint).

CREATE TABLE products_view (
    id          UUID        PRIMARY KEY,
    sku         TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    description TEXT        NOT NULL,
    price_cents BIGINT      NOT NULL,
    currency    TEXT        NOT NULL,
    stock       BIGINT      NOT NULL,
    retired     BOOLEAN     NOT NULL DEFAULT false,
    -- Units in placed (not cancelled) orders; maintained from order events in the same
    -- transaction as the orders, and mirrored to the Redis best-seller sorted set.
    units_sold  BIGINT      NOT NULL DEFAULT 0,
    version     BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX products_view_created_idx ON products_view (created_at, id);
CREATE INDEX products_view_price_idx ON products_view (price_cents, id);
CREATE INDEX products_view_name_idx ON products_view (name, id);
CREATE INDEX products_view_sold_idx ON products_view (units_sold DESC, id) WHERE units_sold > 0;

CREATE TABLE orders_view (
    id           UUID        PRIMARY KEY,
    user_id      UUID        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('placed', 'cancelled')),
    total_cents  BIGINT      NOT NULL,
    currency     TEXT        NOT NULL,
    line_count   INT         NOT NULL,
    version      BIGINT      NOT NULL,
    placed_at    TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    cancelled_at TIMESTAMPTZ
);

CREATE INDEX orders_view_user_idx ON orders_view (user_id, placed_at DESC, id DESC);

-- Lines as ordered: product names and prices as they were at that moment.
CREATE TABLE order_lines_view (
    order_id         UUID   NOT NULL REFERENCES orders_view (id) ON DELETE CASCADE,
    line_no          INT    NOT NULL,
    product_id       UUID   NOT NULL,
    sku              TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    quantity         BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    line_total_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
