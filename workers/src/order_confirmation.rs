//! The order confirmation, sent once to the owner of every order placed (`order.placed`).
//!
//! The event names its owner by id only; their address and name are loaded from the
//! event store (the source of truth) as they are when the email goes out. An owner whose
//! account was deleted (or never existed) gets no email, and the effect counts as done:
//! there is nobody to write to, and retrying cannot change that.

use crate::amounts::format_amount;
use crate::effects::{EffectContext, EffectError, Performed, SideEffect};
use crate::mail::{Mailer, OutgoingMail};
use domain::DomainEvent;
use domain::money::Currency;
use domain::order::{OrderEvent, OrderLine};
use domain::user::{self, UserEvent, UserState};
use eventstore::{EventEnvelope, EventStore, StoreError};
use lettre::message::Mailbox;
use std::sync::Arc;
use uuid::Uuid;

/// Confirms a placed order to its owner by email.
pub struct OrderConfirmation {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    store: EventStore,
}

impl SideEffect for OrderConfirmation {
    const NAME: &'static str = "order_confirmation";
    const EVENT_TYPES: &'static [&'static str] = &["order.placed"];

    fn from_context(context: &EffectContext) -> Self {
        Self::new(
            context.mailer.clone(),
            context.from.clone(),
            context.store.clone(),
        )
    }

    /// Loads the owner of the order in one `order.placed` event and emails them, unless
    /// their account is gone.
    async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        let order = PlacedOrder::from_envelope(envelope)?;
        let (owner, _) = self
            .store
            .load_aggregate::<UserEvent, _>(order.user_id, UserState::New, user::evolve)
            .await
            .map_err(|error| owner_unavailable(&error))?;
        let (email, name) = match owner {
            UserState::Active { email, name, .. } => (email, name),
            UserState::Deleted => return Ok(Performed::Skipped("the order's owner was deleted")),
            UserState::New => return Ok(Performed::Skipped("the order's owner does not exist")),
        };
        let mail = self.compose(envelope, &order, email.as_str(), name.as_str())?;
        self.mailer.send(&mail).await?;
        Ok(Performed::Done)
    }
}

impl OrderConfirmation {
    /// Sends through `mailer`, from `from`, to owners loaded from `store`.
    pub fn new(mailer: Arc<dyn Mailer>, from: Mailbox, store: EventStore) -> Self {
        Self { mailer, from, store }
    }

    /// The email for one order: to its owner (`email`, greeted as `name`), listing every
    /// line and the total, with a Message-ID derived from the event id (so a receiving
    /// side can spot a duplicate too).
    pub fn compose(
        &self,
        envelope: &EventEnvelope,
        order: &PlacedOrder,
        email: &str,
        name: &str,
    ) -> Result<OutgoingMail, EffectError> {
        let address = email
            .parse()
            .map_err(|_| EffectError::permanent("the recipient address is not valid"))?;
        let to = Mailbox::new(Some(name.to_owned()), address);
        let text = order.text(name);
        OutgoingMail::plain_text(
            envelope.id,
            "order-confirmation",
            &self.from,
            to,
            format!("Your order {} is confirmed", order.short_id()),
            text,
        )
        .ok_or_else(|| EffectError::permanent("the order confirmation cannot be composed"))
    }
}

/// Loading the owner failed; a later attempt may succeed (the database is back, or a
/// newer release that reads the owner's events took over).
fn owner_unavailable(error: &StoreError) -> EffectError {
    match error {
        StoreError::Decode(decode) => EffectError::transient(format!(
            "the order's owner cannot be read: {}",
            EffectError::unreadable(decode).message
        )),
        _ => EffectError::transient("the order's owner could not be loaded"),
    }
}

/// An `order.placed` event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    /// The order (the event's stream).
    pub order_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Lines as ordered.
    pub lines: Vec<OrderLine>,
    /// Sum of the line totals, in minor units.
    pub total_cents: i64,
    /// Currency of every amount.
    pub currency: Currency,
}

impl PlacedOrder {
    /// Reads an `order.placed` event; anything else fails permanently, without echoing
    /// any payload value.
    pub fn from_envelope(envelope: &EventEnvelope) -> Result<Self, EffectError> {
        let event = OrderEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data)
            .map_err(|error| EffectError::unreadable(&error))?;
        let OrderEvent::Placed {
            user_id,
            lines,
            total_cents,
            currency,
        } = event
        else {
            return Err(EffectError::permanent(format!(
                "event type {} does not trigger an order confirmation",
                envelope.event_type
            )));
        };
        Ok(Self {
            order_id: envelope.stream_id,
            user_id,
            lines,
            total_cents,
            currency,
        })
    }

    /// The order number people see: the last 8 hex digits of the order id (its random
    /// part; the leading digits of a UUID v7 are a timestamp shared by nearby orders).
    pub fn short_id(&self) -> String {
        let simple = self.order_id.simple().to_string();
        simple[simple.len() - 8..].to_owned()
    }

    /// The plain-text body, greeting the owner as `name`: one line per order line
    /// (name, SKU, quantity × unit price = line total), then the total.
    pub fn text(&self, name: &str) -> String {
        let amount = |minor_units| format_amount(minor_units, self.currency);
        let mut text = format!(
            "Hello {name},\r\n\r\nthank you for your order {}. It is confirmed:\r\n\r\n",
            self.short_id()
        );
        for line in &self.lines {
            text.push_str(&format!(
                "- {} (SKU {}): {} × {} = {}\r\n",
                printable(&line.name),
                printable(&line.sku),
                line.quantity,
                amount(line.unit_price_cents),
                amount(line.line_total_cents),
            ));
        }
        text.push_str(&format!(
            "\r\nTotal: {}\r\n\r\nOrder reference: {}\r\n\r\nThe CQRS Backend team\r\n",
            amount(self.total_cents),
            self.order_id
        ));
        text
    }
}

/// `text` on one line: control characters (which the domain never lets into names and
/// SKUs) become spaces rather than breaking the layout.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
