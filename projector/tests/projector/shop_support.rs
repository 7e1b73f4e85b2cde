//! Shop helpers: products and orders decided by the domain and appended through the
//! event store as the command-api does (an order and its stock reservations in one unit
//! of work), the rows they must end up as, and the Redis best-seller set.

use crate::support::{TestEnv, WAIT};
use domain::money::{Cents, Currency};
use domain::order::OrderEvent;
use domain::order::{self, OrderCommand, OrderLine, OrderState};
use domain::product::{self, Description, ProductCommand, ProductEvent, ProductName, ProductState, Sku};
use domain::review::{Rating, ReviewEvent};
use eventstore::{EventEnvelope, EventMetadata, UnitOfWork};
use projector::orders::{LINE_COLUMNS, OrderRow};
use projector::products::{self as products_view, ProductRow};
use projector::{Projector, orders};
use readmodels::cache::{CacheLookup, Cached, DocumentCache};
use std::collections::BTreeMap;
use testkit::eventually;
use uuid::Uuid;

async fn load_product(uow: &mut UnitOfWork, id: Uuid) -> (ProductState, i64) {
    uow.load_aggregate::<ProductEvent, _>(id, ProductState::New, product::evolve)
        .await
        .expect("load product")
}

impl TestEnv {
    /// Decides a product command on the stored stream and appends its events.
    pub async fn product(&self, id: Uuid, command: ProductCommand) -> Vec<EventEnvelope> {
        let mut uow = self.store.begin().await.expect("begin");
        uow.lock_stream(id).await.expect("lock");
        let (state, version) = load_product(&mut uow, id).await;
        let events = product::decide(&command, &state).expect("product command accepted");
        let stored = uow
            .append(id, version, &events, &EventMetadata::default())
            .await
            .expect("append");
        uow.commit().await.expect("commit");
        stored
    }

    /// Creates a product priced `price_cents` EUR with `stock` units.
    pub async fn create_product(&self, name: &str, price_cents: i64, stock: i64) -> (Uuid, EventEnvelope) {
        let id = Uuid::now_v7();
        let created = ProductCommand::Create {
            sku: Sku::parse(&format!("SKU-{}", testkit::unique_suffix())).expect("sku"),
            name: ProductName::parse(name).expect("name"),
            description: Description::parse("A test product").expect("description"),
            price_cents: Cents::new(price_cents).expect("price"),
            currency: Currency::parse("EUR").expect("currency"),
            stock,
        };
        let mut stored = self.product(id, created).await;
        (id, stored.remove(0))
    }

    /// Places an order of `(product, quantity)` items, priced from the products, taking
    /// their stock in the same transaction. Returns the order id and every event stored.
    pub async fn place_order(&self, items: &[(Uuid, i64)]) -> (Uuid, Vec<EventEnvelope>) {
        let order_id = Uuid::now_v7();
        let mut uow = self.store.begin().await.expect("begin");
        let mut locked: Vec<Uuid> = items.iter().map(|(id, _)| *id).collect();
        locked.sort_unstable();
        let mut states = BTreeMap::new();
        for id in locked {
            uow.lock_stream(id).await.expect("lock");
            states.insert(id, load_product(&mut uow, id).await);
        }
        let lines = items
            .iter()
            .map(|(id, quantity)| {
                let Some((ProductState::Existing(product), _)) = states.get(id) else {
                    panic!("product {id} exists");
                };
                OrderLine {
                    product_id: *id,
                    sku: product.sku.to_string(),
                    name: product.name.to_string(),
                    quantity: *quantity,
                    unit_price_cents: product.price_cents.get(),
                    line_total_cents: 0,
                }
            })
            .collect();
        let place = OrderCommand::Place {
            user_id: Uuid::now_v7(),
            lines,
            currency: Currency::parse("EUR").expect("currency"),
        };
        let events = order::decide(&place, &OrderState::New).expect("order accepted");
        let meta = EventMetadata::default();
        let mut stored = uow.append(order_id, 0, &events, &meta).await.expect("append");
        for (id, quantity) in items {
            let (state, version) = &states[id];
            let reserve = ProductCommand::Reserve {
                order_id,
                quantity: *quantity,
            };
            let reserved = product::decide(&reserve, state).expect("stock available");
            stored.extend(uow.append(*id, *version, &reserved, &meta).await.expect("append"));
        }
        uow.commit().await.expect("commit");
        (order_id, stored)
    }

    /// Writes a review of `product` rated `rating`; returns the review id.
    pub async fn write_review(&self, product: Uuid, rating: i64) -> Uuid {
        let id = Uuid::now_v7();
        let written = ReviewEvent::Written {
            product_id: product,
            author_id: Uuid::now_v7(),
            rating: Rating::parse(rating).expect("rating"),
            comment: None,
        };
        let mut uow = self.store.begin().await.expect("begin");
        uow.append(id, 0, &[written], &EventMetadata::default())
            .await
            .expect("append");
        uow.commit().await.expect("commit");
        id
    }

    /// What Redis holds for one document of any kind.
    pub async fn cached<T: Cached>(&self, id: Uuid) -> CacheLookup<T> {
        DocumentCache::<T>::new(self.redis.prefix.clone(), std::time::Duration::from_secs(60))
            .get(&mut self.redis.connection().await, id)
            .await
            .expect("redis get")
    }

    /// Waits until Redis holds a live document of `id` that `ready` accepts.
    pub async fn wait_for_cached<T: Cached>(&self, id: Uuid, what: &str, ready: impl Fn(&T) -> bool) -> T {
        eventually(WAIT, what, || async {
            match self.cached::<T>(id).await {
                CacheLookup::Hit(document) if ready(&document) => Some(document),
                _ => None,
            }
        })
        .await
    }

    /// Cancels a placed order and gives its stock back, together.
    pub async fn cancel_order(&self, order_id: Uuid) -> Vec<EventEnvelope> {
        let mut uow = self.store.begin().await.expect("begin");
        uow.lock_stream(order_id).await.expect("lock");
        let (state, version) = uow
            .load_aggregate::<OrderEvent, _>(order_id, OrderState::New, order::evolve)
            .await
            .expect("load order");
        let OrderState::Existing(placed) = &state else {
            panic!("order {order_id} exists");
        };
        let events = order::decide(&OrderCommand::Cancel, &state).expect("cancellable");
        let meta = EventMetadata::default();
        let mut lines: Vec<&OrderLine> = placed.lines.iter().collect();
        lines.sort_by_key(|line| line.product_id);
        let mut stored = Vec::new();
        for line in lines {
            uow.lock_stream(line.product_id).await.expect("lock");
            let (product, product_version) = load_product(&mut uow, line.product_id).await;
            let release = ProductCommand::Release {
                order_id,
                quantity: line.quantity,
            };
            let released = product::decide(&release, &product).expect("release");
            stored.extend(
                uow.append(line.product_id, product_version, &released, &meta)
                    .await
                    .expect("append"),
            );
        }
        stored.extend(
            uow.append(order_id, version, &events, &meta)
                .await
                .expect("append"),
        );
        uow.commit().await.expect("commit");
        stored
    }

    pub async fn product_row(&self, id: Uuid) -> Option<ProductRow> {
        let sql = format!(
            "SELECT {} FROM products_view WHERE id = $1",
            products_view::ROW_COLUMNS
        );
        sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .expect("product row")
    }

    pub async fn product_rows(&self) -> Vec<ProductRow> {
        let sql = format!(
            "SELECT {} FROM products_view ORDER BY id",
            products_view::ROW_COLUMNS
        );
        sqlx::query_as(&sql)
            .fetch_all(&self.db.pool)
            .await
            .expect("product rows")
    }

    pub async fn order_row(&self, id: Uuid) -> Option<OrderRow> {
        self.order_rows().await.into_iter().find(|row| row.id == id)
    }

    /// Every order with its lines.
    pub async fn order_rows(&self) -> Vec<OrderRow> {
        let sql = format!("SELECT {} FROM orders_view ORDER BY id", orders::ROW_COLUMNS);
        let mut rows: Vec<OrderRow> = sqlx::query_as(&sql)
            .fetch_all(&self.db.pool)
            .await
            .expect("orders");
        for row in &mut rows {
            let sql =
                format!("SELECT {LINE_COLUMNS} FROM order_lines_view WHERE order_id = $1 ORDER BY line_no");
            row.lines = sqlx::query_as(&sql)
                .bind(row.id)
                .fetch_all(&self.db.pool)
                .await
                .expect("lines");
        }
        rows
    }

    pub async fn wait_for_product(&self, id: Uuid, version: i64) -> ProductRow {
        eventually(WAIT, &format!("product {id} at version {version}"), || async {
            self.product_row(id).await.filter(|row| row.version >= version)
        })
        .await
    }

    pub async fn wait_for_order(&self, id: Uuid, version: i64) -> OrderRow {
        eventually(WAIT, &format!("order {id} at version {version}"), || async {
            self.order_row(id).await.filter(|row| row.version >= version)
        })
        .await
    }

    /// The best-seller score of a product in Redis.
    pub async fn score(&self, id: Uuid) -> Option<i64> {
        redis::cmd("ZSCORE")
            .arg(Projector::top_sellers(&self.settings()).key())
            .arg(id.to_string())
            .query_async(&mut self.redis.connection().await)
            .await
            .expect("zscore")
    }

    /// The whole best-seller set, best first.
    pub async fn top(&self) -> Vec<(String, i64)> {
        redis::cmd("ZREVRANGE")
            .arg(Projector::top_sellers(&self.settings()).key())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut self.redis.connection().await)
            .await
            .expect("zrange")
    }

    /// Waits until every projection's consumer is idle (nothing pending or unacknowledged).
    pub async fn wait_until_all_idle(&self) {
        for consumer in projector::registry::PROJECTIONS.iter().map(|p| p.consumer()) {
            eventually(WAIT, &format!("{consumer} to be idle"), || async {
                let stream = self.jetstream.get_stream(&self.nats.stream.name).await.ok()?;
                let info = stream.consumer_info(consumer).await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            })
            .await;
        }
    }
}
