//! `spawn_app()`: a command API on a free port with its own database, stream and keys.

use command_api::{Application, Settings};
use reqwest::{Client, Response};
use runtime::InfraSettings;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{TestDb, TestNats, TestRedis};
use tokio_util::sync::CancellationToken;
use web::HttpSettings;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: TestDb,
    pub nats: TestNats,
    pub redis: TestRedis,
    pub shutdown: CancellationToken,
}

pub fn settings(db: &TestDb, nats: &TestNats, redis: &TestRedis) -> Settings {
    Settings {
        infra: InfraSettings {
            database_url: db.url.clone(),
            nats_url: nats.url.clone(),
            redis_url: redis.url.clone(),
            redis_prefix: redis.prefix.clone(),
            stream: nats.stream.clone(),
        },
        bind_address: "127.0.0.1".into(),
        port: 0,
        http: HttpSettings {
            request_timeout: Duration::from_secs(10),
            ..HttpSettings::default()
        },
        jwt_issuer: "cqrs-backend".into(),
        access_token_ttl: Duration::from_secs(900),
        refresh_token_ttl: Duration::from_secs(3600),
        private_key_file: None,
        auth_rate_limit_per_minute: 0,
        api_rate_limit: None,
        login_failure_limit: None,
        password_reset_limit: None,
        trust_forwarded_for: false,
        admin: None,
        argon2_max_concurrency: 2,
        database_max_connections: 20,
        outbox_relay: true,
        console: Default::default(),
        webhook_networks: webhooks::NetworkPolicy::PublicOnly,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let redis = TestRedis::new();
    let mut settings = settings(&db, &nats, &redis);
    customise(&mut settings);
    let (base, shutdown) = start(settings).await;
    TestApp {
        base,
        client: Client::new(),
        db,
        nats,
        redis,
        shutdown,
    }
}

/// Starts an application and returns its base URL and stop handle.
pub async fn start(settings: Settings) -> (String, CancellationToken) {
    let app = Application::build(settings).await.expect("the app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    (base, shutdown)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, email: &str, name: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "name": name, "password": password}),
        )
        .await
    }

    /// Registers a user and returns its id.
    pub async fn user(&self, email: &str) -> String {
        let response = self.register(email, "Test User", "password123").await;
        assert_eq!(response.status(), 201);
        body(response).await["data"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Logs in and returns the token response's data.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        body(response).await["data"].clone()
    }

    /// Registers, logs in and returns (id, access token).
    pub async fn signed_in(&self, email: &str) -> (String, String) {
        let id = self.user(email).await;
        let tokens = self.login(email, "password123").await;
        (id, tokens["accessToken"].as_str().expect("token").to_owned())
    }

    /// Makes a user admin directly in the write model's way: through the bootstrap path.
    pub async fn admin_token(&self) -> (String, String) {
        let (id, _) = self.signed_in("root@example.com").await;
        let users = command_api::commands::Users::new(
            eventstore::Engine::new(eventstore::EventStore::new(self.db.pool.clone())),
            auth::PasswordHasher::new(1),
        );
        users
            .execute(
                id.parse().expect("uuid"),
                domain::user::UserCommand::ChangeRole {
                    role: domain::user::Role::Admin,
                },
                None,
                None,
                &eventstore::EventMetadata::default(),
            )
            .await
            .expect("promote");
        let tokens = self.login("root@example.com", "password123").await;
        (id, tokens["accessToken"].as_str().expect("token").to_owned())
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count query")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn body(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// The error code of an error envelope.
pub async fn error_code(response: Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let body = body(response).await;
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
        body,
    )
}

impl TestApp {
    /// Creates a product as `admin` and returns its id.
    pub async fn product(&self, admin: &str, sku: &str, price_cents: i64, stock: i64) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/products"))
            .bearer_auth(admin)
            .json(&json!({"sku": sku, "name": format!("Product {sku}"), "description": "", "priceCents": price_cents, "currency": "EUR", "stock": stock}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201, "creating product {sku}");
        body(response).await["data"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Places an order and returns the response.
    pub async fn order(&self, token: &str, user_id: &str, items: Value) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/users/{user_id}/orders")))
            .bearer_auth(token)
            .json(&json!({ "items": items }))
            .send()
            .await
            .expect("sent")
    }

    /// The product's stock as its events say.
    pub async fn stock(&self, product_id: &str) -> i64 {
        let events: Vec<Value> =
            sqlx::query_scalar("SELECT data FROM events WHERE stream_id = $1::uuid ORDER BY stream_version")
                .bind(product_id)
                .fetch_all(&self.db.pool)
                .await
                .expect("events");
        events.last().and_then(|e| e["stock"].as_i64()).expect("a stock")
    }
}
