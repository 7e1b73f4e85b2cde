//! Shared state of the command API's handlers.

use crate::commands::Users;
use crate::sessions::Sessions;
use crate::shop::Shop;
use auth::TokenVerifier;
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
    /// Access-token verification.
    pub verifier: Arc<TokenVerifier>,
    /// The database (idempotency look-ups).
    pub pool: PgPool,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
