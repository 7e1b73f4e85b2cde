//! The development mailer: each email becomes `<dir>/<key>.eml`, readable with any mail client.

use super::{MailError, Mailer, OutgoingMail};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};

/// Writes emails to a directory instead of sending them.
#[derive(Debug, Clone)]
pub struct FileMailer {
    dir: PathBuf,
}

impl FileMailer {
    /// A mailer writing into `dir`, created if missing.
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory emails are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the email with `key` is written.
    pub fn path_for(&self, key: uuid::Uuid) -> PathBuf {
        self.dir.join(format!("{key}.eml"))
    }
}

impl Mailer for FileMailer {
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let path = self.path_for(mail.key);
            // Write aside and rename, so a reader never sees half a message.
            let partial = self.dir.join(format!("{}.eml.partial", mail.key));
            let written = async {
                tokio::fs::create_dir_all(&self.dir).await?;
                tokio::fs::write(&partial, mail.message.formatted()).await?;
                tokio::fs::rename(&partial, &path).await
            }
            .await;
            match written {
                Ok(()) => {
                    tracing::info!(mail.path = %path.display(), "email written to file");
                    Ok(())
                }
                Err(error) => Err(MailError::transient(format!(
                    "could not write the email file: {error}"
                ))),
            }
        })
    }
}
