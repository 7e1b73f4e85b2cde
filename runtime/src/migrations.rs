//! The schema's migrations (`migrations/`, embedded at build time): applying them, listing
//! them, and reverting the reversible ones.
//!
//! Reversible are the migrations of what can be built again: read models (the projector
//! rebuilds them from the event store), caches' triggers, and side tables whose loss
//! costs nothing lasting (unused password links). They come as `<version>_<name>.up.sql`
//! with a `.down.sql`. The event store, the outbox, the write side (credentials,
//! authority, unique claims, purchases) and the side-effect ledger are forward-only: a
//! down migration would have to destroy or invent facts that events and emails already
//! relied on, so they are single `.sql` files, and a revert that would cross one is
//! refused before anything is undone.

use anyhow::{Context, bail};
use sqlx::PgConnection;
use sqlx::migrate::{Migrate, MigrationType, Migrator};

/// Every migration of `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// One migration as this build knows it and the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The version (the file name's number).
    pub version: i64,
    /// The file name's words.
    pub description: String,
    /// Whether the database has it applied.
    pub applied: bool,
    /// Whether it has a down migration.
    pub reversible: bool,
}

/// Applies pending migrations (under sqlx's advisory lock, so services may race).
pub async fn migrate(conn: &mut PgConnection) -> anyhow::Result<()> {
    MIGRATOR.run(conn).await.context("could not apply migrations")
}

/// Every migration of this build, oldest first, with whether it is applied.
pub async fn status(conn: &mut PgConnection) -> anyhow::Result<Vec<MigrationState>> {
    conn.ensure_migrations_table()
        .await
        .context("could not read the migrations table")?;
    let applied = conn
        .list_applied_migrations()
        .await
        .context("could not read the migrations table")?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| MigrationState {
            version: m.version,
            description: m.description.to_string(),
            applied: applied.iter().any(|a| a.version == m.version),
            reversible: m.migration_type == MigrationType::ReversibleUp,
        })
        .collect())
}

/// Reverts every applied migration newer than `target`, newest first, and returns them.
/// Refused, with nothing undone, when one of them is forward-only.
pub async fn revert(conn: &mut PgConnection, target: i64) -> anyhow::Result<Vec<MigrationState>> {
    let newer: Vec<MigrationState> = status(conn)
        .await?
        .into_iter()
        .filter(|m| m.applied && m.version > target)
        .rev()
        .collect();
    if let Some(forward_only) = newer.iter().find(|m| !m.reversible) {
        bail!(
            "migration {} ({}) is forward-only: reverting to {target} would cross it; \
             nothing was reverted",
            forward_only.version,
            forward_only.description
        );
    }
    MIGRATOR
        .undo(&mut *conn, target)
        .await
        .with_context(|| format!("could not revert to {target}"))?;
    Ok(newer)
}

/// The `migrate` subcommand every service binary has (its arguments are the process's
/// after `<binary> migrate`):
/// - `migrate`: creates the database when missing and applies pending migrations;
/// - `migrate list`: every migration, whether it is applied and whether it can be reverted;
/// - `migrate revert <version>`: reverts every applied migration newer than `<version>`
///   (refused when one of them is forward-only).
pub async fn command(database_url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let args: Vec<String> = std::env::args().skip(2).collect();
    let connect = || async {
        PgConnection::connect(database_url)
            .await
            .context("could not connect to PostgreSQL")
    };
    match args.as_slice() {
        [] => {
            crate::connect_postgres(database_url, 1).await?.close().await;
            println!("migrations applied");
        }
        [list] if list == "list" => {
            for m in status(&mut connect().await?).await? {
                let applied = if m.applied { "applied" } else { "pending" };
                let kind = if m.reversible {
                    "reversible"
                } else {
                    "forward-only"
                };
                println!("{:<16} {applied:<8} {kind:<13} {}", m.version, m.description);
            }
        }
        [revert, target] if revert == "revert" => {
            let target: i64 = target
                .parse()
                .with_context(|| format!("`{target}` is not a migration version (see `migrate list`)"))?;
            let reverted = self::revert(&mut connect().await?, target).await?;
            if reverted.is_empty() {
                println!("nothing to revert: no applied migration is newer than {target}");
            }
            for m in reverted {
                println!("reverted {} {}", m.version, m.description);
            }
        }
        _ => bail!("usage: migrate [list | revert <version>]"),
    }
    Ok(())
}
