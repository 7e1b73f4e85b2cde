//! Delivery over SMTP with lettre's pooled async transport.

use super::{MailError, Mailer, OutgoingMail};
use futures::future::BoxFuture;
use lettre::transport::smtp::{self, AsyncSmtpTransport};
use lettre::{AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// Sends through an SMTP server.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// A mailer for a connection URL as lettre's `AsyncSmtpTransport::from_url` reads it:
    /// `smtp://host[:port]` (plain, port 25 by default), `smtp://host?tls=required` or
    /// `?tls=opportunistic` (STARTTLS, port 587), `smtps://host` (implicit TLS, port 465),
    /// each with optional `user:password@` credentials and `/<helo-name>` path.
    pub fn from_url(url: &str, timeout: Duration) -> Result<Self, smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport })
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let raw = mail.message.formatted();
            self.transport
                .send_raw(mail.message.envelope(), &raw)
                .await
                .map(|_| ())
                .map_err(|error| describe(&error))
        })
    }
}

/// A description without the server's free text, which may echo the recipient.
fn describe(error: &smtp::Error) -> MailError {
    match error.status() {
        Some(code) if error.is_permanent() => {
            MailError::permanent(format!("SMTP server refused the message: permanent error {code}"))
        }
        Some(code) => {
            MailError::transient(format!("SMTP server refused the message: transient error {code}"))
        }
        None if error.is_timeout() => MailError::transient("SMTP server did not answer in time"),
        None => MailError::transient(format!("SMTP delivery failed: {error}")),
    }
}
