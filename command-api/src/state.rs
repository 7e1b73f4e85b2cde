//! Shared state of the command API's handlers.

use crate::account_limit::AccountLimit;
use crate::commands::Users;
use crate::sessions::Sessions;
use crate::shop::Shop;
use auth::{Authority, TokenVerifier};
use axum::extract::FromRef;
use sqlx::PgPool;
use std::sync::Arc;

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// User commands.
    pub users: Users,
    /// Login, refresh, logout.
    pub sessions: Sessions,
    /// Products and orders.
    pub shop: Shop,
    /// The one command path: every aggregate without a service of its own (reviews).
    pub engine: eventstore::Engine,
    /// Access-token verification.
    pub verifier: Arc<TokenVerifier>,
    /// Callers' current role and existence, checked on every write.
    pub authority: Authority,
    /// The database (idempotency look-ups).
    pub pool: PgPool,
    /// Failed logins per account and per address.
    pub login_limit: AccountLimit,
    /// Password resets per account and per address.
    pub reset_limit: AccountLimit,
    /// Webhook endpoints and their deliveries.
    pub webhooks: webhooks::Webhooks,
    /// Which addresses webhook URLs may name.
    pub webhook_networks: webhooks::NetworkPolicy,
    /// Whether the client address comes from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for Authority {
    fn from_ref(state: &AppState) -> Self {
        state.authority.clone()
    }
}
