//! Placing and cancelling an order decide over several aggregates at once: the order,
//! its owner and every product it names. These pure functions hold those rules (lines,
//! prices, currency, stock, who may cancel); the engine loads the states, calls them and
//! appends every stream's events in one unit of work with each stream's expected version.

use super::decider::{
    MAX_LINES, MAX_QUANTITY, Order, OrderCommand, OrderError, OrderLine, OrderState, OrderStatus,
};
use super::events::OrderEvent;
use crate::Decider;
use crate::money::Currency;
use crate::product::{ProductCommand, ProductError, ProductEvent, ProductState};
use crate::user::UserState;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The order aggregate as a [`Decider`].
pub struct OrderAggregate;

impl Decider for OrderAggregate {
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(command: &OrderCommand, state: &OrderState) -> Result<Vec<OrderEvent>, OrderError> {
        super::decider::decide(command, state)
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        super::decider::evolve(state, event)
    }

    fn is_live(state: &OrderState) -> bool {
        matches!(state, OrderState::Existing(_))
    }
}

/// One line of a request: a product and its units.
pub type Item = (Uuid, i64);

/// What is wrong with one requested line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFault {
    /// The quantity is outside 1..=[`MAX_QUANTITY`].
    Quantity(usize),
    /// The product already appears in an earlier line.
    Duplicate(usize),
}

/// Why the lines of an order request are refused before any state is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    /// No lines, or more than [`MAX_LINES`].
    #[error("an order has 1 to 50 lines")]
    Count,
    /// Lines at fault, in line order.
    #[error("invalid lines")]
    Lines(Vec<LineFault>),
}

/// The shape rules of an order's lines: their number, each quantity, no product twice.
/// The order decider applies the same rules; callers may check them first to answer
/// with every faulty line at once.
pub fn check_items(items: &[Item]) -> Result<(), LinesError> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(LinesError::Count);
    }
    let mut faults = Vec::new();
    let mut seen = HashSet::new();
    for (index, (product_id, quantity)) in items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(quantity) {
            faults.push(LineFault::Quantity(index));
        }
        if !seen.insert(*product_id) {
            faults.push(LineFault::Duplicate(index));
        }
    }
    if faults.is_empty() {
        Ok(())
    } else {
        Err(LinesError::Lines(faults))
    }
}

/// Why an order cannot be placed or cancelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The owner does not exist or was deleted.
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
    /// The order decider refused.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A product decider refused.
    #[error(transparent)]
    Product(#[from] ProductError),
}

/// The events of a placement or cancellation: the order's and each product's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    /// The order's events.
    pub order: Vec<OrderEvent>,
    /// Each product's events, in product id order.
    pub products: Vec<(Uuid, Vec<ProductEvent>)>,
}

/// Places order `order_id` for `owner_id`: each line priced at its product's current
/// price, one currency, the stock of every line taken, or nothing at all. Every line at
/// fault is named, the first kind of fault found winning (unknown, retired, currency, stock).
pub fn place(
    order_id: Uuid,
    owner_id: Uuid,
    owner: &UserState,
    order: &OrderState,
    items: &[Item],
    products: &HashMap<Uuid, ProductState>,
) -> Result<StockMove, PlacementError> {
    if !matches!(owner, UserState::Active { .. }) {
        return Err(PlacementError::UserNotFound);
    }
    let (lines, currency) = price_lines(items, products)?;
    let order_events = super::decider::decide(
        &OrderCommand::Place {
            user_id: owner_id,
            lines,
            currency,
        },
        order,
    )?;
    let mut moves = Vec::with_capacity(items.len());
    for (product_id, quantity) in items {
        let state = products.get(product_id).cloned().unwrap_or_default();
        let reserve = ProductCommand::Reserve {
            order_id,
            quantity: *quantity,
        };
        moves.push((*product_id, crate::product::decide(&reserve, &state)?));
    }
    moves.sort_by_key(|(id, _)| *id);
    Ok(StockMove {
        order: order_events,
        products: moves,
    })
}

/// Who asks to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceller {
    /// User id.
    pub id: Uuid,
    /// Administrator?
    pub admin: bool,
}

/// The placed order that `order` is, when `caller` may see it: another user's order
/// answers like an unknown one, as on the read side.
pub fn visible_to(order: &OrderState, caller: Canceller) -> Result<&Order, OrderError> {
    match order {
        OrderState::Existing(existing) if existing.user_id == caller.id || caller.admin => Ok(existing),
        _ => Err(OrderError::NotFound),
    }
}

/// Cancels a placed order (its owner or an admin) and gives every line's stock back.
pub fn cancel(
    order_id: Uuid,
    order: &OrderState,
    caller: Canceller,
    products: &HashMap<Uuid, ProductState>,
) -> Result<StockMove, PlacementError> {
    let existing = visible_to(order, caller)?;
    let order_events = super::decider::decide(&OrderCommand::Cancel, order)?;
    let mut moves = Vec::with_capacity(existing.lines.len());
    for line in &existing.lines {
        let state = products.get(&line.product_id).cloned().unwrap_or_default();
        let release = ProductCommand::Release {
            order_id,
            quantity: line.quantity,
        };
        moves.push((line.product_id, crate::product::decide(&release, &state)?));
    }
    moves.sort_by_key(|(id, _)| *id);
    Ok(StockMove {
        order: order_events,
        products: moves,
    })
}

/// The products an order's lines name, for loading before [`cancel`].
pub fn products_of(order: &OrderState) -> Vec<Uuid> {
    match order {
        OrderState::Existing(existing) if existing.status == OrderStatus::Placed => {
            existing.lines.iter().map(|line| line.product_id).collect()
        }
        _ => Vec::new(),
    }
}

fn price_lines(
    items: &[Item],
    products: &HashMap<Uuid, ProductState>,
) -> Result<(Vec<OrderLine>, Currency), PlacementError> {
    let mut unknown = Vec::new();
    let mut retired = Vec::new();
    let mut short = Vec::new();
    let mut mixed = Vec::new();
    let mut currency = None;
    let mut lines = Vec::with_capacity(items.len());
    for (index, (product_id, quantity)) in items.iter().enumerate() {
        let Some(ProductState::Existing(product)) = products.get(product_id) else {
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
        return Err(PlacementError::UnknownProducts(unknown));
    }
    if !retired.is_empty() {
        return Err(PlacementError::RetiredProducts(retired));
    }
    if !mixed.is_empty() {
        return Err(PlacementError::CurrencyMismatch(mixed));
    }
    if !short.is_empty() {
        return Err(PlacementError::InsufficientStock(short));
    }
    let currency = currency.ok_or(PlacementError::Order(OrderError::LineCount))?;
    Ok((lines, currency))
}
