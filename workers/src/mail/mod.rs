//! Sending emails behind a small trait: SMTP in production ([`SmtpMailer`]) and, when no
//! `SMTP_URL` is set, `.eml` files in a directory for development ([`FileMailer`]).

mod file;
mod smtp;

pub use file::FileMailer;
pub use smtp::SmtpMailer;

use crate::settings::MailSettings;
use futures::future::BoxFuture;
use std::sync::Arc;
use uuid::Uuid;

/// A composed email and the key that identifies it (the event id that caused it).
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// Identifies the email: the file mailer names its file after it.
    pub key: Uuid,
    /// The message with its envelope.
    pub message: lettre::Message,
}

impl OutgoingMail {
    /// A plain-text email caused by event `key`, its Message-ID `<{kind}.{key}@{domain of
    /// from}>` (so a receiving side can spot a duplicate too). `None` when lettre refuses
    /// the parts.
    pub fn plain_text(
        key: Uuid,
        kind: &str,
        from: &lettre::message::Mailbox,
        to: lettre::message::Mailbox,
        subject: String,
        text: String,
    ) -> Option<Self> {
        use lettre::message::Body;
        use lettre::message::header::{ContentTransferEncoding, ContentType};
        let message_id = format!("<{kind}.{key}@{}>", from.email.domain());
        // 8bit keeps names and amounts readable as sent; lettre refuses it for lines over
        // 76 characters, and those fall back to its automatic choice.
        let body = Body::new_with_encoding(text.clone(), ContentTransferEncoding::EightBit)
            .unwrap_or_else(|_| Body::new(text));
        let message = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .ok()?;
        Some(Self { key, message })
    }
}

/// Why an email was not sent. The message is safe to store and show to operators: it
/// never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// Retrying cannot help (e.g. the server answered 5xx).
    pub permanent: bool,
    /// What went wrong.
    pub message: String,
}

impl MailError {
    /// A failure that may go away by itself.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: message.into(),
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
        }
    }
}

/// Something that delivers emails.
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one email; `Ok` means the receiving side accepted it.
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>>;
}

/// The mailer the settings ask for: SMTP when `SMTP_URL` is set, else the file mailer.
pub fn from_settings(settings: &MailSettings) -> Result<Arc<dyn Mailer>, MailerSetupError> {
    match &settings.smtp_url {
        Some(url) => {
            let mailer = SmtpMailer::from_url(url, settings.smtp_timeout)
                .map_err(|_| MailerSetupError("SMTP_URL is not a URL lettre can use".into()))?;
            tracing::info!(mail.transport = "smtp", "emails are sent over SMTP");
            Ok(Arc::new(mailer))
        }
        None => {
            let mailer = FileMailer::new(settings.dir.clone())
                .map_err(|e| MailerSetupError(format!("MAIL_DIR cannot be created: {e}")))?;
            tracing::info!(
                mail.transport = "file",
                mail.dir = %settings.dir.display(),
                "SMTP_URL is not set; emails are written to files"
            );
            Ok(Arc::new(mailer))
        }
    }
}

/// The configured mailer cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailerSetupError(String);
