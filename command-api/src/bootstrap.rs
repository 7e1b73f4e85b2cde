//! The bootstrap administrator: with `ADMIN_EMAIL` and `ADMIN_PASSWORD` set, start-up
//! makes sure that account exists with role admin, through the normal command path
//! (so `user.registered` / `user.role_changed` are emitted like for any user).
//! An existing account keeps its password.

use crate::accounts;
use crate::commands::{CommandError, Registration, Users};
use crate::settings::AdminAccount;
use anyhow::Context;
use domain::user::{Email, Password, Role, UserCommand, UserName};
use eventstore::EventMetadata;
use sqlx::PgPool;

/// Creates or promotes the administrator.
pub async fn ensure_admin(users: &Users, pool: &PgPool, admin: &AdminAccount) -> anyhow::Result<()> {
    let email = Email::parse(&admin.email).map_err(|e| anyhow::anyhow!("ADMIN_EMAIL {e}"))?;
    let name = UserName::parse(&admin.name).map_err(|e| anyhow::anyhow!("ADMIN_NAME {e}"))?;
    let password = Password::parse(&admin.password).map_err(|e| anyhow::anyhow!("ADMIN_PASSWORD {e}"))?;
    let metadata = EventMetadata {
        correlation_id: Some("bootstrap-admin".into()),
        causation_id: Some("bootstrap-admin".into()),
        actor_id: None,
    };
    for _ in 0..3 {
        let existing = accounts::user_id_by_email(pool, email.as_str())
            .await
            .context("looking up the admin")?;
        match existing {
            Some(id) => {
                users
                    .execute(
                        id,
                        UserCommand::ChangeRole { role: Role::Admin },
                        None,
                        None,
                        &metadata,
                    )
                    .await
                    .context("promoting the admin")?;
                tracing::info!(user.id = %id, "bootstrap admin present");
                return Ok(());
            }
            None => {
                let input = Registration {
                    email: email.clone(),
                    name: name.clone(),
                    password: Some(password.clone()),
                    role: Role::Admin,
                };
                match users.register(input, &metadata, None).await {
                    Ok(outcome) => {
                        tracing::info!(user.id = %outcome.id, "bootstrap admin created");
                        return Ok(());
                    }
                    // Another replica created it at the same moment: promote that one.
                    Err(CommandError::EmailTaken) => continue,
                    Err(error) => return Err(error).context("creating the admin"),
                }
            }
        }
    }
    anyhow::bail!("could not create the bootstrap admin")
}
