//! The command side of the shop. Every unit of work that touches products takes their
//! stream locks (sorted by id, so concurrent units cannot deadlock) and reads their
//! state inside the transaction: concurrent orders for one product queue up instead of
//! failing, stock is decided on the latest state, and an order takes all of its lines
//! or none. Clients see 201 or 422 under contention, not 409.

use crate::commands::PendingIdempotency;
use domain::money::Currency;
use domain::order::{self, Order, OrderCommand, OrderError, OrderEvent, OrderLine, OrderState};
use domain::product::{self, Product, ProductCommand, ProductError, ProductEvent, ProductState};
use domain::user::{self, UserEvent, UserState};
use eventstore::{EventMetadata, EventStore, StoreError, UnitOfWork};
use std::collections::BTreeSet;
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

/// Who asks, for order authorisation.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// User id.
    pub id: Uuid,
    /// Administrator?
    pub admin: bool,
}

/// The shop command service.
#[derive(Clone)]
pub struct Shop {
    store: EventStore,
}

async fn load_product(uow: &mut UnitOfWork, id: Uuid) -> Result<(ProductState, i64), ShopError> {
    Ok(uow
        .load_aggregate::<ProductEvent, _>(id, ProductState::New, product::evolve)
        .await?)
}

fn existing(state: ProductState) -> Result<Product, ShopError> {
    match state {
        ProductState::Existing(product) => Ok(product),
        ProductState::New => Err(ShopError::Product(ProductError::NotFound)),
    }
}

impl Shop {
    /// A service over a store.
    pub fn new(store: EventStore) -> Self {
        Self { store }
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
        let events = product::decide(&command, &ProductState::New)?;
        let mut uow = self.store.begin().await?;
        uow.claim(SKU_CLAIM, sku.as_str(), id).await?;
        let stored = uow.append(id, 0, &events, metadata).await?;
        let state = events.iter().fold(ProductState::New, product::evolve);
        let outcome = ProductOutcome {
            id,
            product: existing(state)?,
            version: stored.last().map_or(0, |e| e.stream_version),
            position: stored.last().map(|e| e.position),
        };
        if let Some(pending) = idempotency {
            uow.save_idempotent(&pending.complete(&outcome)).await?;
        }
        uow.commit().await?;
        Ok(outcome)
    }

    /// Updates, restocks or retires a product under its stream lock.
    pub async fn change_product(
        &self,
        id: Uuid,
        command: ProductCommand,
        if_match: Option<i64>,
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency<ProductOutcome>>,
    ) -> Result<ProductOutcome, ShopError> {
        let mut uow = self.store.begin().await?;
        uow.lock_stream(id).await?;
        let (state, version) = load_product(&mut uow, id).await?;
        if let (Some(expected), ProductState::Existing(_)) = (if_match, &state)
            && expected != version
        {
            return Err(ShopError::Stale(version));
        }
        let events = product::decide(&command, &state)?;
        let stored = uow.append(id, version, &events, metadata).await?;
        let state = events.iter().fold(state, product::evolve);
        let outcome = ProductOutcome {
            id,
            product: existing(state)?,
            version: stored.last().map_or(version, |e| e.stream_version),
            position: stored.last().map(|e| e.position),
        };
        if let Some(pending) = idempotency {
            uow.save_idempotent(&pending.complete(&outcome)).await?;
        }
        uow.commit().await?;
        Ok(outcome)
    }

    /// Places an order for `user_id`: prices each line at the product's current price and
    /// takes the stock of every line in the same transaction, or refuses the whole order.
    pub async fn place_order(
        &self,
        user_id: Uuid,
        items: &[(Uuid, i64)],
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency<OrderOutcome>>,
    ) -> Result<OrderOutcome, ShopError> {
        let (owner, _) = self
            .store
            .load_aggregate::<UserEvent, _>(user_id, UserState::New, user::evolve)
            .await?;
        if !matches!(owner, UserState::Active { .. }) {
            return Err(ShopError::UserNotFound);
        }
        let order_id = Uuid::now_v7();
        let mut uow = self.store.begin().await?;
        let ids: BTreeSet<Uuid> = items.iter().map(|(id, _)| *id).collect();
        let mut products = std::collections::HashMap::new();
        for id in &ids {
            uow.lock_stream(*id).await?;
            products.insert(*id, load_product(&mut uow, *id).await?);
        }
        let lines = price_lines(items, &products)?;
        let currency = lines.1;
        let command = OrderCommand::Place {
            user_id,
            lines: lines.0,
            currency,
        };
        let order_events = order::decide(&command, &OrderState::New)?;
        let stored = uow.append(order_id, 0, &order_events, metadata).await?;
        for (product_id, quantity) in items {
            let (state, version) = &products[product_id];
            let reserve = ProductCommand::Reserve {
                order_id,
                quantity: *quantity,
            };
            let events = product::decide(&reserve, state)?;
            uow.append(*product_id, *version, &events, metadata).await?;
        }
        let outcome = order_outcome(order_id, OrderState::New, &order_events, &stored)?;
        if let Some(pending) = idempotency {
            uow.save_idempotent(&pending.complete(&outcome)).await?;
        }
        uow.commit().await?;
        Ok(outcome)
    }

    /// Cancels a placed order (owner or admin) and gives its stock back, together.
    pub async fn cancel_order(
        &self,
        order_id: Uuid,
        caller: Caller,
        metadata: &EventMetadata,
    ) -> Result<OrderOutcome, ShopError> {
        let mut uow = self.store.begin().await?;
        uow.lock_stream(order_id).await?;
        let (state, version) = uow
            .load_aggregate::<OrderEvent, _>(order_id, OrderState::New, order::evolve)
            .await?;
        let OrderState::Existing(order) = &state else {
            return Err(OrderError::NotFound.into());
        };
        // Another user's order answers like an unknown one, as on the read side.
        if order.user_id != caller.id && !caller.admin {
            return Err(OrderError::NotFound.into());
        }
        let events = order::decide(&OrderCommand::Cancel, &state)?;
        let mut lines: Vec<&OrderLine> = order.lines.iter().collect();
        lines.sort_by_key(|l| l.product_id);
        for line in &lines {
            uow.lock_stream(line.product_id).await?;
            let (product, product_version) = load_product(&mut uow, line.product_id).await?;
            let release = ProductCommand::Release {
                order_id,
                quantity: line.quantity,
            };
            let released = product::decide(&release, &product)?;
            uow.append(line.product_id, product_version, &released, metadata)
                .await?;
        }
        let stored = uow.append(order_id, version, &events, metadata).await?;
        let outcome = order_outcome(order_id, state, &events, &stored)?;
        uow.commit().await?;
        Ok(outcome)
    }
}

fn order_outcome(
    id: Uuid,
    state: OrderState,
    events: &[OrderEvent],
    stored: &[eventstore::EventEnvelope],
) -> Result<OrderOutcome, ShopError> {
    let OrderState::Existing(order) = events.iter().fold(state, order::evolve) else {
        return Err(OrderError::NotFound.into());
    };
    let last = stored.last().ok_or(ShopError::Order(OrderError::NotFound))?;
    Ok(OrderOutcome {
        id,
        order,
        version: last.stream_version,
        position: last.position,
    })
}

/// Prices the items from the locked product states; collects every line at fault.
fn price_lines(
    items: &[(Uuid, i64)],
    products: &std::collections::HashMap<Uuid, (ProductState, i64)>,
) -> Result<(Vec<OrderLine>, Currency), ShopError> {
    let mut unknown = Vec::new();
    let mut retired = Vec::new();
    let mut short = Vec::new();
    let mut mixed = Vec::new();
    let mut currency = None;
    let mut lines = Vec::with_capacity(items.len());
    for (index, (product_id, quantity)) in items.iter().enumerate() {
        let Some((ProductState::Existing(product), _)) = products.get(product_id) else {
            unknown.push(index);
            continue;
        };
        if product.retired {
            retired.push(index);
            continue;
        }
        if *currency.get_or_insert(product.currency) != product.currency {
            mixed.push(index);
        }
        if *quantity > product.stock {
            short.push((index, product.stock));
        }
        lines.push(OrderLine {
            product_id: *product_id,
            sku: product.sku.to_string(),
            name: product.name.to_string(),
            quantity: *quantity,
            unit_price_cents: product.price_cents.get(),
            line_total_cents: 0,
        });
    }
    if !unknown.is_empty() {
        return Err(ShopError::UnknownProducts(unknown));
    }
    if !retired.is_empty() {
        return Err(ShopError::RetiredProducts(retired));
    }
    if !mixed.is_empty() {
        return Err(ShopError::CurrencyMismatch(mixed));
    }
    if !short.is_empty() {
        return Err(ShopError::InsufficientStock(short));
    }
    let currency = currency.ok_or(ShopError::Order(OrderError::LineCount))?;
    Ok((lines, currency))
}
