//! The command side of the shop, through the engine's one command path. Products are
//! single-stream commands; an order is one unit of work over the order and every product
//! it names, each appended with the version its decision was made on. The rules (prices,
//! currency, stock, who may cancel) are the domain's (`domain::order::place`, `cancel`);
//! a unit that loses a race for any of its streams is decided again on fresh states, so
//! concurrent orders for one product are answered 201 or 422, rarely 409.

use crate::commands::{PendingIdempotency, Positioned, answer};
use domain::Decider;
use domain::order::{
    self, Canceller, Item, Order, OrderAggregate, OrderError, OrderState, PlacementError, StockMove,
};
use domain::product::{Product, ProductAggregate, ProductCommand, ProductError, ProductState};
use domain::user::UserAggregate;
use eventstore::{CommandFailure, Commit, Engine, EventEnvelope, EventMetadata, Expect, Loaded, StoreError};
use futures::FutureExt;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// The claim that keeps SKUs unique.
pub const SKU_CLAIM: &str = "product.sku";

/// Why a shop command failed.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// The product decider refused.
    #[error(transparent)]
    Product(#[from] ProductError),
    /// The order decider refused.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// Another product has this SKU.
    #[error("sku already taken")]
    SkuTaken,
    /// The user placing the order does not exist or was deleted.
    #[error("user not found")]
    UserNotFound,
    /// Lines naming products that do not exist (indexes into the items).
    #[error("unknown products")]
    UnknownProducts(Vec<usize>),
    /// Lines naming retired products.
    #[error("retired products")]
    RetiredProducts(Vec<usize>),
    /// Lines whose products are in another currency than the first line's.
    #[error("mixed currencies")]
    CurrencyMismatch(Vec<usize>),
    /// Lines short of stock: (index, available).
    #[error("insufficient stock")]
    InsufficientStock(Vec<(usize, i64)>),
    /// The caller may not touch this order.
    #[error("forbidden")]
    Forbidden,
    /// `If-Match` named another version.
    #[error("stale version; current is {0}")]
    Stale(i64),
    /// Writers kept colliding.
    #[error("too many concurrent changes")]
    Contention,
    /// A concurrent request with the same idempotency key committed first.
    #[error("idempotency key raced")]
    IdempotencyRaced,
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ShopError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyClaimed { .. } => ShopError::SkuTaken,
            StoreError::IdempotencyKeyTaken => ShopError::IdempotencyRaced,
            other => ShopError::Store(other),
        }
    }
}

impl From<PlacementError> for ShopError {
    fn from(error: PlacementError) -> Self {
        match error {
            PlacementError::UserNotFound => ShopError::UserNotFound,
            PlacementError::UnknownProducts(lines) => ShopError::UnknownProducts(lines),
            PlacementError::RetiredProducts(lines) => ShopError::RetiredProducts(lines),
            PlacementError::CurrencyMismatch(lines) => ShopError::CurrencyMismatch(lines),
            PlacementError::InsufficientStock(lines) => ShopError::InsufficientStock(lines),
            PlacementError::Order(error) => ShopError::Order(error),
            PlacementError::Product(error) => ShopError::Product(error),
        }
    }
}

impl<E: Into<ShopError>> From<CommandFailure<E>> for ShopError {
    fn from(failure: CommandFailure<E>) -> Self {
        match failure {
            CommandFailure::Rejected(error) => error.into(),
            CommandFailure::Stale { current } => ShopError::Stale(current),
            CommandFailure::Contention => ShopError::Contention,
            CommandFailure::Store(error) => error.into(),
        }
    }
}

/// A product after a command.
#[derive(Debug, Clone)]
pub struct ProductOutcome {
    /// Id.
    pub id: Uuid,
    /// State after the command.
    pub product: Product,
    /// Stream version.
    pub version: i64,
    /// Position of the last event appended, `None` when nothing changed.
    pub position: Option<i64>,
}

impl Positioned for ProductOutcome {
    fn at(mut self, envelopes: &[EventEnvelope]) -> Self {
        self.position = envelopes.last().map(|e| e.position).or(self.position);
        self
    }
}

/// An order after a command.
#[derive(Debug, Clone)]
pub struct OrderOutcome {
    /// Id.
    pub id: Uuid,
    /// State after the command.
    pub order: Order,
    /// Stream version.
    pub version: i64,
    /// Position of the order event appended.
    pub position: i64,
}

impl Positioned for OrderOutcome {
    fn at(mut self, envelopes: &[EventEnvelope]) -> Self {
        if let Some(event) = envelopes.iter().rev().find(|e| e.stream_id == self.id) {
            self.position = event.position;
        }
        self
    }
}

/// Who asks, for order authorisation.
pub type Caller = Canceller;

/// The shop command service.
#[derive(Clone)]
pub struct Shop {
    engine: Engine,
}

fn existing(state: ProductState) -> Result<Product, ProductError> {
    match state {
        ProductState::Existing(product) => Ok(product),
        ProductState::New => Err(ProductError::NotFound),
    }
}

impl Shop {
    /// A service over the engine.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Adds a product: SKU claim, `product.created` and the idempotent answer commit together.
    pub async fn create_product(
        &self,
        command: ProductCommand,
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency<ProductOutcome>>,
    ) -> Result<ProductOutcome, ShopError> {
        let ProductCommand::Create { sku, .. } = &command else {
            return Err(ProductError::NotFound.into());
        };
        let id = Uuid::now_v7();
        let claim = Some(sku.as_str().to_owned());
        self.run_product(id, &command, Expect::Any, claim, metadata, idempotency)
            .await
    }

    /// Updates, restocks or retires a product.
    pub async fn change_product(
        &self,
        id: Uuid,
        command: ProductCommand,
        if_match: Option<i64>,
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency<ProductOutcome>>,
    ) -> Result<ProductOutcome, ShopError> {
        self.run_product(id, &command, Expect::from(if_match), None, metadata, idempotency)
            .await
    }

    /// One product command; `sku_claim` is claimed for the product with its events.
    async fn run_product(
        &self,
        id: Uuid,
        command: &ProductCommand,
        expect: Expect,
        sku_claim: Option<String>,
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency<ProductOutcome>>,
    ) -> Result<ProductOutcome, ShopError> {
        let (outcome, envelopes) = self
            .engine
            .execute::<ProductAggregate, _, ProductError>(id, expect, |loaded| {
                let events = ProductAggregate::decide(command, &loaded.state)?;
                let (change, state) = eventstore::change::<ProductAggregate>(id, loaded, &events);
                let outcome = ProductOutcome {
                    id,
                    product: existing(state)?,
                    version: eventstore::version_after(loaded, &events),
                    position: None,
                };
                let mut commit = Commit::new(metadata.clone());
                if let Some(sku) = &sku_claim {
                    commit = commit.claim(SKU_CLAIM, sku.clone(), id);
                }
                let commit = commit
                    .change(change)
                    .idempotent(answer(idempotency.as_ref(), &outcome));
                Ok((commit, outcome))
            })
            .await?;
        Ok(outcome.at(&envelopes))
    }

    /// Places an order for `user_id`: each line priced at the product's current price and
    /// the stock of every line taken in the same unit of work, or the whole order refused.
    pub async fn place_order(
        &self,
        user_id: Uuid,
        items: &[Item],
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency<OrderOutcome>>,
    ) -> Result<OrderOutcome, ShopError> {
        let order_id = Uuid::now_v7();
        let ids: BTreeSet<Uuid> = items.iter().map(|(id, _)| *id).collect();
        let mut tries = Tries::new(&self.engine);
        loop {
            // The owner is read from the store: the order's commit does not append to
            // the user's stream, so no version check would catch a stale cached state.
            let owner = self.engine.load_fresh::<UserAggregate>(user_id).await?;
            let products = self.load_products(ids.iter().copied(), tries.fresh).await?;
            let states = states_of(&products);
            let moves = match order::place(order_id, user_id, &owner.state, &OrderState::New, items, &states)
            {
                Ok(moves) => moves,
                Err(error) => {
                    tries.refused(error)?;
                    continue;
                }
            };
            let new_order = Loaded::<OrderState>::default();
            let (outcome, commit) = stock_move(order_id, &new_order, &products, moves, metadata)?;
            let bought: Vec<Uuid> = ids.iter().copied().collect();
            let commit = commit
                .hook(move |conn| record_purchases(conn, order_id, user_id, bought).boxed())
                .idempotent(answer(idempotency.as_ref(), &outcome));
            match self.engine.commit(commit).await {
                Ok(envelopes) => return Ok(outcome.at(&envelopes)),
                Err(error) => tries.failed(error).await?,
            }
        }
    }

    /// Cancels a placed order (owner or admin) and gives its stock back, together.
    pub async fn cancel_order(
        &self,
        order_id: Uuid,
        caller: Caller,
        metadata: &EventMetadata,
    ) -> Result<OrderOutcome, ShopError> {
        let mut tries = Tries::new(&self.engine);
        loop {
            let order = if tries.fresh {
                self.engine.load_fresh::<OrderAggregate>(order_id).await?
            } else {
                self.engine.load::<OrderAggregate>(order_id).await?
            };
            let products = self
                .load_products(order::products_of(&order.state), tries.fresh)
                .await?;
            let moves = match order::cancel(order_id, &order.state, caller, &states_of(&products)) {
                Ok(moves) => moves,
                Err(error) => {
                    tries.refused(error)?;
                    continue;
                }
            };
            let (outcome, commit) = stock_move(order_id, &order, &products, moves, metadata)?;
            let commit = commit.hook(move |conn| forget_purchases(conn, order_id).boxed());
            match self.engine.commit(commit).await {
                Ok(envelopes) => return Ok(outcome.at(&envelopes)),
                Err(error) => tries.failed(error).await?,
            }
        }
    }

    async fn load_products(
        &self,
        ids: impl IntoIterator<Item = Uuid>,
        fresh: bool,
    ) -> Result<HashMap<Uuid, Loaded<ProductState>>, StoreError> {
        let mut products = HashMap::new();
        for id in ids {
            let loaded = if fresh {
                self.engine.load_fresh::<ProductAggregate>(id).await?
            } else {
                self.engine.load::<ProductAggregate>(id).await?
            };
            products.insert(id, loaded);
        }
        Ok(products)
    }
}

/// The engine's conflict policy for a unit over several streams: states come from the
/// cache first; a lost race is decided again on fresh states (with backoff, a bounded
/// number of times), and so is a refusal decided on cached states, since a refusal
/// appends nothing that a version check could catch.
struct Tries {
    attempts: eventstore::Attempts,
    fresh: bool,
}

impl Tries {
    fn new(engine: &Engine) -> Self {
        Self {
            attempts: engine.attempts(),
            fresh: false,
        }
    }

    /// The decider refused: `Ok` to decide again on fresh states, else the refusal.
    fn refused(&mut self, error: PlacementError) -> Result<(), ShopError> {
        if self.fresh {
            return Err(error.into());
        }
        self.fresh = true;
        Ok(())
    }

    /// The commit failed: `Ok` to try again after a lost race, else the failure.
    async fn failed(&mut self, error: StoreError) -> Result<(), ShopError> {
        if !error.is_retryable() {
            return Err(error.into());
        }
        if !self.attempts.again().await {
            return Err(ShopError::Contention);
        }
        self.fresh = true;
        Ok(())
    }
}

/// The write side's record of who bought what (`purchases`), for "only a buyer may review".
async fn record_purchases(
    conn: &mut sqlx::PgConnection,
    order_id: Uuid,
    user_id: Uuid,
    products: Vec<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO purchases (order_id, product_id, user_id) SELECT $1, unnest($2::uuid[]), $3
         ON CONFLICT DO NOTHING",
        order_id,
        &products,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn forget_purchases(conn: &mut sqlx::PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM purchases WHERE order_id = $1", order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether a user has a placed, not cancelled order of a product.
pub async fn has_bought(pool: &sqlx::PgPool, user_id: Uuid, product_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM purchases WHERE user_id = $1 AND product_id = $2) AS "bought!""#,
        user_id,
        product_id
    )
    .fetch_one(pool)
    .await
}

fn states_of(products: &HashMap<Uuid, Loaded<ProductState>>) -> HashMap<Uuid, ProductState> {
    products
        .iter()
        .map(|(id, loaded)| (*id, loaded.state.clone()))
        .collect()
}

/// The unit of work of a placement or cancellation: the order's change and each
/// product's, every one at the version it was decided on.
fn stock_move(
    order_id: Uuid,
    order: &Loaded<OrderState>,
    products: &HashMap<Uuid, Loaded<ProductState>>,
    moves: StockMove,
    metadata: &EventMetadata,
) -> Result<(OrderOutcome, Commit), ShopError> {
    let (change, state) = eventstore::change::<OrderAggregate>(order_id, order, &moves.order);
    let OrderState::Existing(placed) = state else {
        return Err(OrderError::NotFound.into());
    };
    let outcome = OrderOutcome {
        id: order_id,
        order: placed,
        version: eventstore::version_after(order, &moves.order),
        position: 0,
    };
    let mut commit = Commit::new(metadata.clone()).change(change);
    for (product_id, events) in &moves.products {
        let loaded = products.get(product_id).cloned().unwrap_or_default();
        let (change, _) = eventstore::change::<ProductAggregate>(*product_id, &loaded, events);
        commit = commit.change(change);
    }
    Ok((outcome, commit))
}
