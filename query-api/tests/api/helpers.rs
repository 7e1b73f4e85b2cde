//! `spawn_app()` and the `TestApp` helpers every test uses: a query API on a free port,
//! its own database and Redis prefix, a published signing key to mint tokens with, and
//! direct access to the `users_view` table (the projector is not part of these tests).

use auth::{SigningKey, TokenIssuer};
use chrono::{DateTime, Duration, DurationRound, Utc};
use domain::user::Role;
use query_api::{Application, Settings};
use readmodels::cache::{CacheLookup, Cached, DocumentCache};
use readmodels::users::{USER_COLUMNS, UserCache, UserView};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration as StdDuration;
use testkit::{TestDb, TestRedis, eventually};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

/// Token issuer name the app is configured with.
pub const ISSUER: &str = "cqrs-backend";
/// Lifetime of the cache entries written by the app under test.
const CACHE_TTL: StdDuration = StdDuration::from_secs(300);
/// Long enough that a negative entry cannot expire during a test.
const NEGATIVE_CACHE_TTL: StdDuration = StdDuration::from_secs(120);

/// A running query API and what it runs against.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A client without cookies or redirects surprises.
    pub client: reqwest::Client,
    /// The app's database.
    pub db: TestDb,
    /// The app's Redis prefix.
    pub redis: TestRedis,
    /// The cache as the app (and the projector) sees it.
    pub cache: UserCache,
    /// The published key tokens are signed with.
    pub key: SigningKey,
    _server: DropGuard,
}

/// A query API on a working Redis, once it has connected to it and listens to the
/// change feed (so its caches are in play).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with settings of the test's own (the rate limit is off by default).
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let app = start(None, customise).await;
    eventually(
        StdDuration::from_secs(10),
        "the app to connect to Redis and listen to changes",
        || async {
            let (status, body) = app.get_json("/health/ready", None).await;
            let checks = &body["data"]["checks"];
            (status == StatusCode::OK && checks["redis"] == "up" && checks["changes"] == "up").then_some(())
        },
    )
    .await;
    app
}

/// A query API whose Redis URL is `redis_url` (or the test Redis).
pub async fn spawn_app_with_redis(redis_url: Option<&str>) -> TestApp {
    start(redis_url, |_| {}).await
}

async fn start(redis_url: Option<&str>, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    let redis = TestRedis::new();
    let mut settings = Settings {
        database_url: db.url.clone(),
        database_max_connections: 5,
        redis_url: redis_url.unwrap_or(&redis.url).to_owned(),
        redis_prefix: redis.prefix.clone(),
        jwt_issuer: ISSUER.to_owned(),
        bind_address: [127, 0, 0, 1].into(),
        port: 0,
        cache_ttl: CACHE_TTL,
        negative_cache_ttl: NEGATIVE_CACHE_TTL,
        consistency_wait: std::time::Duration::from_secs(2),
        http: web::HttpSettings::default(),
        api_rate_limit: None,
        trust_forwarded_for: false,
    };
    customise(&mut settings);
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    let key = SigningKey::generate();
    key.publish(&db.pool).await.expect("publish the signing key");
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .expect("client"),
        cache: UserCache::new(redis.prefix.clone(), CACHE_TTL),
        db,
        redis,
        key,
        _server: shutdown.drop_guard(),
    }
}

/// A user row to seed.
pub struct NewUser<'a> {
    /// Id (default a fresh one).
    pub id: Option<Uuid>,
    /// Display name; the email is derived from it unless given.
    pub name: &'a str,
    /// Email (default `<name without spaces, lower case>@example.com`).
    pub email: Option<&'a str>,
    /// Role.
    pub role: Role,
    /// Stream version.
    pub version: i64,
    /// Registration time (default now).
    pub created_at: Option<DateTime<Utc>>,
}

impl<'a> NewUser<'a> {
    /// A regular user at version 1, registered now.
    pub fn named(name: &'a str) -> Self {
        Self {
            id: None,
            name,
            email: None,
            role: Role::User,
            version: 1,
            created_at: None,
        }
    }
}

impl TestApp {
    /// A valid access token.
    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.issuer(Duration::minutes(15))
            .issue(user_id, role)
            .expect("token")
            .token
    }

    /// An issuer with the published key and any token lifetime (negative for expired).
    pub fn issuer(&self, ttl: Duration) -> TokenIssuer {
        TokenIssuer::new(self.key.clone(), ISSUER, ttl)
    }

    /// A token of an administrator who exists on the write side (so their admin powers
    /// are confirmed) but has no read-model row.
    pub async fn admin_token(&self) -> String {
        let id = Uuid::now_v7();
        self.set_authority(id, Some(Role::Admin)).await;
        self.token(id, Role::Admin)
    }

    /// A token of a live regular user who has no read-model row.
    pub async fn user_token(&self) -> String {
        let id = Uuid::now_v7();
        self.set_authority(id, Some(Role::User)).await;
        self.token(id, Role::User)
    }

    /// Sets a user's current standing on the write side as the command API does: their
    /// role, or `None` once deleted.
    pub async fn set_authority(&self, id: Uuid, role: Option<Role>) {
        let mut conn = self.db.pool.acquire().await.expect("a connection");
        match role {
            Some(role) => auth::authority::record_role(&mut conn, id, role).await,
            None => auth::authority::remove(&mut conn, id).await,
        }
        .expect("set the user's authority");
    }

    /// Inserts a live user into `users_view`, as the projector would, and their role
    /// into the write side's authority table, as the command API would.
    pub async fn seed(&self, user: NewUser<'_>) -> UserView {
        let email = user
            .email
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}@example.com", user.name.replace(' ', ".").to_lowercase()));
        // Postgres keeps microseconds; round so the seeded value is what comes back.
        let created_at = user.created_at.unwrap_or_else(Utc::now);
        let created_at = created_at
            .duration_trunc(Duration::microseconds(1))
            .expect("truncate");
        let sql = format!(
            "INSERT INTO users_view (id, email, name, role, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {USER_COLUMNS}"
        );
        let id = user.id.unwrap_or_else(Uuid::now_v7);
        self.set_authority(id, Some(user.role)).await;
        sqlx::query_as::<_, UserView>(&sql)
            .bind(id)
            .bind(email)
            .bind(user.name)
            .bind(user.role.as_str())
            .bind(user.version)
            .bind(created_at)
            .fetch_one(&self.db.pool)
            .await
            .expect("seed a user")
    }

    /// Turns a user into an erased tombstone, as the projector does on `user.deleted`
    /// (and removes their authority, as the command API does).
    pub async fn mark_deleted(&self, id: Uuid) {
        self.set_authority(id, None).await;
        sqlx::query(
            "UPDATE users_view SET email = NULL, name = NULL, version = version + 1,
             deleted_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&self.db.pool)
        .await
        .expect("mark a user deleted");
    }

    /// Removes a row from Postgres behind the cache's back.
    pub async fn remove_row(&self, id: Uuid) {
        sqlx::query("DELETE FROM users_view WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await
            .expect("delete a row");
    }

    /// What the Redis cache holds for a user.
    pub async fn cached(&self, id: Uuid) -> CacheLookup<UserView> {
        self.cached_as(id).await
    }

    /// The Redis documents of one kind, as the app (and the projector) sees them.
    pub fn documents<T: Cached>(&self) -> DocumentCache<T> {
        DocumentCache::new(self.redis.prefix.clone(), CACHE_TTL)
    }

    /// Writes the document of a row as Postgres has it now, the way the projector does
    /// after a commit; whether the cache took it (it keeps the newer document).
    pub async fn project_document<T: Cached>(&self, id: Uuid) -> bool {
        let entry = T::load(&self.db.pool, &[id])
            .await
            .expect("read the row")
            .pop()
            .expect("the row");
        let mut conn = self.redis.connection().await;
        self.documents::<T>()
            .put_entry(&mut conn, &entry)
            .await
            .expect("write the cache")
    }

    /// What the Redis cache holds for a row of any kind.
    pub async fn cached_as<T: Cached>(&self, id: Uuid) -> CacheLookup<T> {
        let mut conn = self.redis.connection().await;
        self.documents::<T>()
            .get(&mut conn, id)
            .await
            .expect("read the cache")
    }

    /// Writes a user into the cache the way the projector does.
    pub async fn project_into_cache(&self, user: &UserView) {
        let mut conn = self.redis.connection().await;
        self.cache.put(&mut conn, user).await.expect("write the cache");
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the request is answered")
    }

    /// `GET path` and the JSON body.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let response = self.get(path, token).await;
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }
}

/// The `error.details[*].field` of a 400, asserting its code.
pub fn refused_fields(status: StatusCode, body: &Value) -> Vec<String> {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
    body["error"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .filter_map(|d| d["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts an error envelope with this status and code.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["meta"]["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}
