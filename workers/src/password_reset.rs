//! The password-reset email (`user.password_reset_requested`): a single-use link that
//! sets a new password, valid for `PASSWORD_RESET_TTL_MINUTES` from the request.
//!
//! The token is made here, not by the command API, so that it exists only in the email
//! and, as a SHA-256, in `password_reset_tokens`: never in an event, a log line or an
//! answer. A retried email (the first one failed) replaces its event's token, so the
//! link that was never sent dies with it.

use crate::effects::{EffectContext, EffectError, Performed, SideEffect};
use crate::mail::{Mailer, OutgoingMail};
use domain::DomainEvent;
use domain::user::{self, UserEvent, UserState};
use eventstore::{EventEnvelope, EventStore};
use lettre::message::Mailbox;
use std::sync::Arc;
use std::time::Duration;

/// Where the links lead and how long they work.
#[derive(Debug, Clone)]
pub struct PasswordLinks {
    /// `PASSWORD_RESET_URL`: the page that asks for the new password; the link is
    /// `<url>#token=<token>` (a fragment never reaches a server's logs).
    pub url: String,
    /// `PASSWORD_RESET_TTL_MINUTES` (30).
    pub ttl: Duration,
}

/// One link as the email tells it.
pub struct Link<'a> {
    /// The secret.
    pub token: &'a str,
    /// When it stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Whether it sets the account's first password (an account an admin made).
    pub first: bool,
}

/// Emails a link that sets a new password.
pub struct PasswordResetEmail {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    store: EventStore,
    links: PasswordLinks,
}

impl SideEffect for PasswordResetEmail {
    const NAME: &'static str = "password_reset_email";
    const EVENT_TYPES: &'static [&'static str] = &["user.password_reset_requested"];

    fn from_context(context: &EffectContext) -> Self {
        Self {
            mailer: context.mailer.clone(),
            from: context.from.clone(),
            store: context.store.clone(),
            links: context.password_links.clone(),
        }
    }

    async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        UserEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data)
            .map_err(|error| EffectError::unreadable(&error))?;
        let expires_at = envelope.occurred_at
            + chrono::Duration::from_std(self.links.ttl).unwrap_or(chrono::Duration::minutes(30));
        if expires_at <= chrono::Utc::now() {
            return Ok(Performed::Skipped(
                "the request expired before its email could be sent",
            ));
        }
        let (account, _) = self
            .store
            .load_aggregate::<UserEvent, _>(envelope.stream_id, UserState::New, user::evolve)
            .await
            .map_err(|_| EffectError::transient("the account could not be loaded"))?;
        let UserState::Active { email, name, .. } = account else {
            return Ok(Performed::Skipped("the account was deleted"));
        };
        let secret = auth::RefreshSecret::generate();
        let stored = sqlx::query_scalar::<_, bool>(
            "INSERT INTO password_reset_tokens (event_id, token_hash, user_id, expires_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_id) DO UPDATE SET token_hash = EXCLUDED.token_hash
             WHERE password_reset_tokens.used_at IS NULL
             RETURNING true",
        )
        .bind(envelope.id)
        .bind(&secret.hash)
        .bind(envelope.stream_id)
        .bind(expires_at)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|error| {
            tracing::warn!(error = %error, "the password link could not be stored");
            EffectError::transient("the link could not be stored")
        })?;
        if stored.is_none() {
            return Ok(Performed::Skipped("the link was already used"));
        }
        // An account an administrator created has no password yet: its link sets the first.
        let has_password =
            sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM credentials WHERE user_id = $1)")
                .bind(envelope.stream_id)
                .fetch_one(self.store.pool())
                .await
                .map_err(|_| EffectError::transient("the account could not be loaded"))?;
        let link = Link {
            token: &secret.token,
            expires_at,
            first: !has_password,
        };
        let mail = self.compose(envelope, email.as_str(), name.as_str(), &link)?;
        self.mailer.send(&mail).await?;
        Ok(Performed::Done)
    }
}

impl PasswordResetEmail {
    /// The email: the link, the token itself (for clients without the page), and when
    /// it stops working.
    pub fn compose(
        &self,
        envelope: &EventEnvelope,
        email: &str,
        name: &str,
        link: &Link<'_>,
    ) -> Result<OutgoingMail, EffectError> {
        let address = email
            .parse()
            .map_err(|_| EffectError::permanent("the recipient address is not valid"))?;
        let token = link.token;
        let url = format!("{}#token={token}", self.links.url);
        let (subject, opening, closing) = if link.first {
            (
                "Set the password of your new account",
                "an account was made for you. To choose its password, open",
                "If you did not expect it, ignore this email: nobody can sign in to the account \
                 without a password.",
            )
        } else {
            (
                "Reset your password",
                "someone asked to reset the password of this account. To choose a new one, open",
                "If you did not ask for it, ignore this email: your password stays as it is.",
            )
        };
        let text = format!(
            "Hello {name},\r\n\r\n{opening}\r\n\r\n{url}\r\n\r\nor send this token with the \
             new password to POST /api/v1/passwords/reset/confirm:\r\n\r\n{token}\r\n\r\nThe \
             link works once, until {} (UTC). {closing}\r\n\r\nThe CQRS Backend team\r\n",
            link.expires_at.format("%Y-%m-%d %H:%M")
        );
        OutgoingMail::plain_text(
            envelope.id,
            "password-reset",
            &self.from,
            Mailbox::new(Some(name.to_owned()), address),
            subject.to_owned(),
            text,
        )
        .ok_or_else(|| EffectError::permanent("the password-reset email cannot be composed"))
    }
}
