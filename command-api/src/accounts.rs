//! Write-side account storage that changes together with the user events: password
//! hashes, the email claim, and refresh-token sessions.

use auth::{RefreshSecret, hash_refresh_token};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// The unique-claim kind that keeps one account per email.
pub const EMAIL_CLAIM: &str = "user.email";

/// The owner of an email, if any.
pub async fn user_id_by_email(pool: &PgPool, email: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT owner_id FROM unique_claims WHERE kind = $1 AND value = $2",
        EMAIL_CLAIM,
        email
    )
    .fetch_optional(pool)
    .await
}

/// The stored password hash of a user.
pub async fn password_hash(pool: &PgPool, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT password_hash FROM credentials WHERE user_id = $1",
        user_id
    )
    .fetch_optional(pool)
    .await
}

/// Stores or replaces a user's password hash.
pub async fn set_password_hash(
    conn: &mut PgConnection,
    user_id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO credentials (user_id, password_hash) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
        user_id,
        hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a user's credentials: they can no longer log in.
pub async fn delete_credentials(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM credentials WHERE user_id = $1", user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Starts a session: a refresh token in a new family.
pub async fn create_session(
    pool: &PgPool,
    user_id: Uuid,
    ttl: Duration,
) -> Result<RefreshSecret, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    insert_token(&mut conn, user_id, Uuid::now_v7(), ttl).await
}

async fn insert_token(
    conn: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
    ttl: Duration,
) -> Result<RefreshSecret, sqlx::Error> {
    let secret = RefreshSecret::generate();
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7));
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        Uuid::now_v7(),
        family_id,
        user_id,
        &secret.hash,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(secret)
}

/// What presenting a refresh token led to.
pub enum Rotation {
    /// The token was live: here is its successor.
    Rotated {
        /// The session's user.
        user_id: Uuid,
        /// The new token.
        secret: RefreshSecret,
    },
    /// Unknown, expired or revoked.
    Invalid,
    /// A token that was already rotated came back: the whole family is now revoked.
    Reused,
}

struct TokenRow {
    family_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Rotates a refresh token. The row lock makes two concurrent uses of one token
/// resolve as one rotation and one reuse.
pub async fn rotate(pool: &PgPool, token: &str, ttl: Duration) -> Result<Rotation, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as!(
        TokenRow,
        "SELECT family_id, user_id, expires_at, rotated_at, revoked_at FROM refresh_tokens
         WHERE token_hash = $1 FOR UPDATE",
        hash_refresh_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    if row.rotated_at.is_some() {
        revoke_family(&mut tx, row.family_id).await?;
        tx.commit().await?;
        return Ok(Rotation::Reused);
    }
    if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
        return Ok(Rotation::Invalid);
    }
    sqlx::query!(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1",
        hash_refresh_token(token)
    )
    .execute(&mut *tx)
    .await?;
    let secret = insert_token(&mut tx, row.user_id, row.family_id, ttl).await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user_id: row.user_id,
        secret,
    })
}

async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes the session a refresh token belongs to (logout). Unknown tokens are ignored.
pub async fn revoke_session(pool: &PgPool, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE revoked_at IS NULL
           AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        hash_refresh_token(token)
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes every session of a user (password change, deletion).
pub async fn revoke_user_sessions(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses a password-reset token: marks it used if it is unused and unexpired, in the
/// statement that checks it (so it works once even under concurrent confirmations), and
/// returns its user.
pub async fn use_reset_token(
    pool: &PgPool,
    token_hash: &[u8],
) -> Result<Option<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    let used = sqlx::query!(
        "UPDATE password_reset_tokens SET used_at = clock_timestamp()
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id, used_at AS \"used_at!\"",
        token_hash
    )
    .fetch_optional(pool)
    .await?;
    Ok(used.map(|row| (row.user_id, row.used_at)))
}

/// Makes a token usable again after the password change it was used for failed, unless
/// something else ended it meanwhile (its `used_at` is no longer the one this use set).
pub async fn restore_reset_token(
    pool: &PgPool,
    token_hash: &[u8],
    used_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE password_reset_tokens SET used_at = NULL WHERE token_hash = $1 AND used_at = $2",
        token_hash,
        used_at
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends every outstanding reset link of a user (the password changed, or the account is
/// gone).
pub async fn retire_reset_tokens(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE password_reset_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}
