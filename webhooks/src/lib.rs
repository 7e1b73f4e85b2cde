//! Webhooks for subscribers without NATS: admins register endpoints on the command API,
//! the workers POST every matching event to each, signed ([`signing`]), and keep every
//! delivery and attempt ([`store`]) for admins to list, retry and replay.

pub mod address;
pub mod input;
pub mod signing;
pub mod store;

pub use address::{NetworkPolicy, NotAllowed};
pub use input::{NewWebhook, WebhookPatch};
pub use store::{
    Attempt, AttemptResult, Claimed, Delivery, DeliveryDetail, DeliveryPolicy, DeliveryStatus, Guarded,
    RecordOutcome, Recorded, Remember, Webhook, WebhookWithSecret, Webhooks,
};
