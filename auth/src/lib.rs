//! Authentication primitives shared by the services: argon2id password hashing off the
//! async runtime, Ed25519-signed access tokens (minted only by the command API, verified
//! everywhere), refresh-token secrets that are stored only as hashes, and the current
//! authority (role, existence) of users, which tokens do not carry reliably.

pub mod authority;
mod claims;
mod keys;
mod password;
mod refresh;
mod verifier;

pub use authority::Authority;
pub use claims::{AccessToken, Claims, TokenIssuer};
pub use keys::SigningKey;
pub use password::{PasswordError, PasswordHasher};
pub use refresh::{RefreshSecret, hash_refresh_token};
pub use verifier::{AuthError, TokenVerifier};

/// The audience of every access token this backend mints.
pub const AUDIENCE: &str = "cqrs-api";
