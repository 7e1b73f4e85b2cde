//! The product decider.

use super::events::ProductEvent;
use super::values::{Description, ProductName, Sku};
use crate::money::{Cents, Currency};
use uuid::Uuid;

/// A product that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// SKU.
    pub sku: Sku,
    /// Name.
    pub name: ProductName,
    /// Description.
    pub description: Description,
    /// Price in minor units.
    pub price_cents: Cents,
    /// Currency.
    pub currency: Currency,
    /// Units in stock (never negative).
    pub stock: i64,
    /// Retired products are kept for old orders but cannot be ordered or changed.
    pub retired: bool,
}

/// Everything the decider knows about one product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProductState {
    /// No event yet.
    #[default]
    New,
    /// Created (possibly retired).
    Existing(Product),
}

/// What a caller asks of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductCommand {
    /// Add it to the catalogue.
    Create {
        /// SKU.
        sku: Sku,
        /// Name.
        name: ProductName,
        /// Description.
        description: Description,
        /// Price.
        price_cents: Cents,
        /// Currency.
        currency: Currency,
        /// Initial stock, 0 or more.
        stock: i64,
    },
    /// Change catalogue data; `None` leaves a field as it is.
    Update {
        /// New name.
        name: Option<ProductName>,
        /// New description.
        description: Option<Description>,
        /// New price.
        price_cents: Option<Cents>,
    },
    /// Add units.
    Restock {
        /// Units, more than 0.
        quantity: i64,
    },
    /// Stop selling it.
    Retire,
    /// Take units for an order.
    Reserve {
        /// The order.
        order_id: Uuid,
        /// Units.
        quantity: i64,
    },
    /// Give back the units of a cancelled order.
    Release {
        /// The order.
        order_id: Uuid,
        /// Units.
        quantity: i64,
    },
}

/// Why a product command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// Create on an id that has events.
    #[error("product already exists")]
    AlreadyExists,
    /// Any other command on an unknown product.
    #[error("product not found")]
    NotFound,
    /// The product is retired.
    #[error("product is retired")]
    Retired,
    /// Not enough units for a reservation.
    #[error("insufficient stock: {available} available, {requested} requested")]
    InsufficientStock {
        /// Units in stock.
        available: i64,
        /// Units asked for.
        requested: i64,
    },
    /// A quantity out of range (stock below 0, restock of 0 or less).
    #[error("invalid quantity")]
    InvalidQuantity,
}

/// Largest stock a product may hold.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// Decides which events a command causes.
pub fn decide(command: &ProductCommand, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
    let product = match (command, state) {
        (
            ProductCommand::Create {
                sku,
                name,
                description,
                price_cents,
                currency,
                stock,
            },
            ProductState::New,
        ) => {
            if !super::stock_in_range(*stock) {
                return Err(ProductError::InvalidQuantity);
            }
            return Ok(vec![ProductEvent::Created {
                sku: sku.clone(),
                name: name.clone(),
                description: description.clone(),
                price_cents: *price_cents,
                currency: *currency,
                stock: *stock,
            }]);
        }
        (ProductCommand::Create { .. }, ProductState::Existing(_)) => {
            return Err(ProductError::AlreadyExists);
        }
        (_, ProductState::New) => return Err(ProductError::NotFound),
        (_, ProductState::Existing(product)) => product,
    };
    match command {
        ProductCommand::Create { .. } => Err(ProductError::AlreadyExists),
        ProductCommand::Release { order_id, quantity } => {
            if *quantity <= 0 {
                return Err(ProductError::InvalidQuantity);
            }
            Ok(vec![ProductEvent::StockReleased {
                order_id: *order_id,
                quantity: *quantity,
                stock: product.stock.saturating_add(*quantity),
            }])
        }
        _ if product.retired => Err(ProductError::Retired),
        ProductCommand::Update {
            name,
            description,
            price_cents,
        } => {
            let name = name.clone().filter(|n| *n != product.name);
            let description = description.clone().filter(|d| *d != product.description);
            let price_cents = price_cents.filter(|p| *p != product.price_cents);
            if name.is_none() && description.is_none() && price_cents.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![ProductEvent::Updated {
                name,
                description,
                price_cents,
            }])
        }
        ProductCommand::Restock { quantity } => {
            if !super::restock_in_range(*quantity) || product.stock.saturating_add(*quantity) > MAX_STOCK {
                return Err(ProductError::InvalidQuantity);
            }
            Ok(vec![ProductEvent::Restocked {
                quantity: *quantity,
                stock: product.stock + quantity,
            }])
        }
        ProductCommand::Retire => Ok(vec![ProductEvent::Retired {}]),
        ProductCommand::Reserve { order_id, quantity } => {
            if *quantity <= 0 {
                return Err(ProductError::InvalidQuantity);
            }
            if *quantity > product.stock {
                return Err(ProductError::InsufficientStock {
                    available: product.stock,
                    requested: *quantity,
                });
            }
            Ok(vec![ProductEvent::StockReserved {
                order_id: *order_id,
                quantity: *quantity,
                stock: product.stock - quantity,
            }])
        }
    }
}

/// Applies one event.
pub fn evolve(state: ProductState, event: &ProductEvent) -> ProductState {
    match (state, event) {
        (
            _,
            ProductEvent::Created {
                sku,
                name,
                description,
                price_cents,
                currency,
                stock,
            },
        ) => ProductState::Existing(Product {
            sku: sku.clone(),
            name: name.clone(),
            description: description.clone(),
            price_cents: *price_cents,
            currency: *currency,
            stock: *stock,
            retired: false,
        }),
        (ProductState::Existing(mut product), event) => {
            match event {
                ProductEvent::Updated {
                    name,
                    description,
                    price_cents,
                } => {
                    if let Some(name) = name {
                        product.name = name.clone();
                    }
                    if let Some(description) = description {
                        product.description = description.clone();
                    }
                    if let Some(price) = price_cents {
                        product.price_cents = *price;
                    }
                }
                ProductEvent::Restocked { stock, .. }
                | ProductEvent::StockReserved { stock, .. }
                | ProductEvent::StockReleased { stock, .. } => product.stock = *stock,
                ProductEvent::Retired {} => product.retired = true,
                ProductEvent::Created { .. } => {}
            }
            ProductState::Existing(product)
        }
        (
            ProductState::New,
            ProductEvent::Updated { .. }
            | ProductEvent::Restocked { .. }
            | ProductEvent::StockReserved { .. }
            | ProductEvent::StockReleased { .. }
            | ProductEvent::Retired {},
        ) => ProductState::New,
    }
}
