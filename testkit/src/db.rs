//! A fresh, migrated database per test, dropped when the test ends.

use sqlx::{Connection, PgConnection, PgPool};

/// The server tests create their databases on (`TEST_DATABASE_URL`).
fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test. Use it from `#[tokio::test(flavor = "multi_thread")]`:
/// its `Drop` blocks the current thread while the database is dropped.
pub struct TestDb {
    /// Pool on the test database.
    pub pool: PgPool,
    /// URL of the test database, for services started by the test.
    pub url: String,
    name: String,
}

impl TestDb {
    /// Creates and migrates a new database.
    pub async fn new() -> Self {
        let admin = admin_url();
        let name = format!("test_{}", crate::unique_suffix());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {admin} (set TEST_DATABASE_URL): {e}")
        });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let pool = runtime::connect_postgres(&url, 10)
            .await
            .expect("connect and migrate the test database");
        Self { pool, url, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let pool = self.pool.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                pool.close().await;
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
