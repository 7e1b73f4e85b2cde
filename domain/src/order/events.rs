//! Order events: a public contract (JSON Schemas in `schemas/events/`).

use super::decider::OrderLine;
use crate::event::{DomainEvent, EventDecodeError};
use crate::money::Currency;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Something that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    /// `order.placed` v1.
    Placed {
        /// The owner.
        user_id: Uuid,
        /// Lines as ordered.
        lines: Vec<OrderLine>,
        /// Sum of the line totals, in minor units.
        total_cents: i64,
        /// Currency of every line.
        currency: Currency,
    },
    /// `order.cancelled` v1: the stock went back.
    Cancelled,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlacedV1 {
    user_id: Uuid,
    lines: Vec<OrderLine>,
    total_cents: i64,
    currency: Currency,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl OrderEvent {
    /// Every event type of the order stream with its current schema version.
    pub const TYPES: [(&'static str, i32); 2] = [("order.placed", 1), ("order.cancelled", 1)];
}

impl DomainEvent for OrderEvent {
    const STREAM_TYPE: &'static str = "order";

    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::Placed { .. } => "order.placed",
            OrderEvent::Cancelled => "order.cancelled",
        }
    }

    fn schema_version(&self) -> i32 {
        1
    }

    fn to_data(&self) -> Value {
        match self {
            OrderEvent::Placed {
                user_id,
                lines,
                total_cents,
                currency,
            } => json!(PlacedV1 {
                user_id: *user_id,
                lines: lines.clone(),
                total_cents: *total_cents,
                currency: *currency,
            }),
            OrderEvent::Cancelled => json!({}),
        }
    }

    fn from_stored(event_type: &str, schema_version: i32, data: &Value) -> Result<Self, EventDecodeError> {
        if schema_version != 1 {
            return Err(EventDecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version: schema_version,
            });
        }
        let malformed = |e: serde_json::Error| EventDecodeError::Malformed {
            event_type: event_type.to_owned(),
            reason: e.to_string(),
        };
        match event_type {
            "order.placed" => {
                let v = PlacedV1::deserialize(data).map_err(malformed)?;
                Ok(OrderEvent::Placed {
                    user_id: v.user_id,
                    lines: v.lines,
                    total_cents: v.total_cents,
                    currency: v.currency,
                })
            }
            "order.cancelled" => {
                Empty::deserialize(data).map_err(malformed)?;
                Ok(OrderEvent::Cancelled)
            }
            other => Err(EventDecodeError::UnknownType(other.to_owned())),
        }
    }
}
