//! Test harness: a fresh database, stream and Redis prefix per test, events produced the
//! real way (event store + outbox relay), and the projector started in-process.

use async_nats::jetstream;
use domain::user::{Email, Role, UserEvent, UserName};
use eventstore::{EventEnvelope, EventMetadata, EventStore, OutboxRelay};
use projector::Documents;
use projector::users::{ROW_COLUMNS, UserRow};
use projector::{Projector, Settings};
use readmodels::users::UserCache;
use runtime::InfraSettings;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::{TestDb, TestNats, TestRedis, eventually};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for the projection to catch up.
pub const WAIT: Duration = Duration::from_secs(20);

/// One test's infrastructure.
pub struct TestEnv {
    pub db: TestDb,
    pub nats: TestNats,
    pub redis: TestRedis,
    pub store: EventStore,
    pub jetstream: jetstream::Context,
    /// Mints access tokens with a key published in this test's database, as the command API does.
    issuer: auth::TokenIssuer,
}

/// A projector running in this process.
pub struct Running {
    pub addr: SocketAddr,
    token: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Cancels it and waits until it has drained.
    pub async fn stop(self) {
        self.token.cancel();
        self.handle.await.expect("projector task").expect("projector ran");
    }

    /// A URL of its HTTP endpoints.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl TestEnv {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let nats = TestNats::new();
        let jetstream = jetstream::new(nats.client().await);
        eventstore::ensure_stream(&jetstream, &nats.stream)
            .await
            .expect("stream");
        let key = auth::SigningKey::generate();
        key.publish(&db.pool).await.expect("publish signing key");
        let issuer = auth::TokenIssuer::new(key, "cqrs-backend", chrono::Duration::minutes(15));
        Self {
            issuer,
            store: EventStore::new(db.pool.clone()),
            db,
            nats,
            redis: TestRedis::new(),
            jetstream,
        }
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::new(InfraSettings {
            database_url: self.db.url.clone(),
            nats_url: self.nats.url.clone(),
            redis_url: self.redis.url.clone(),
            redis_prefix: self.redis.prefix.clone(),
            stream: self.nats.stream.clone(),
        });
        settings.bind_address = [127, 0, 0, 1].into();
        settings.port = 0;
        settings
    }

    pub fn cache(&self) -> UserCache {
        self.documents().users
    }

    pub fn documents(&self) -> Documents {
        Projector::documents(&self.settings())
    }

    pub async fn start(&self) -> Running {
        let nats = runtime::connect_nats(&self.nats.url).await.expect("nats");
        let redis = runtime::RedisHandle::connect(&self.redis.url).expect("redis url");
        redis.wait(Duration::from_secs(5)).await.expect("redis");
        let app = Projector::build(self.settings(), self.db.pool.clone(), nats, redis)
            .await
            .expect("bind");
        let addr = app.local_addr().expect("addr");
        let token = CancellationToken::new();
        let handle = tokio::spawn(app.run(token.clone()));
        Running { addr, token, handle }
    }

    /// Appends events to a user stream in one transaction.
    pub async fn append(&self, id: Uuid, expected: i64, events: &[UserEvent]) -> Vec<EventEnvelope> {
        let mut uow = self.store.begin().await.expect("begin");
        let stored = uow
            .append(id, expected, events, &EventMetadata::default())
            .await
            .expect("append");
        uow.commit().await.expect("commit");
        stored
    }

    /// Registers a new user and waits until the running projector has its row.
    pub async fn register(&self, name: &str) -> (Uuid, UserRow) {
        let id = Uuid::now_v7();
        self.append(id, 0, &[registered(&email(), name, Role::User)])
            .await;
        self.publish_outbox().await;
        (id, self.wait_for_version(id, 1).await)
    }

    /// Publishes every outbox row to JetStream, as the command-api's relay does.
    pub async fn publish_outbox(&self) -> usize {
        let relay = OutboxRelay::new(
            self.db.pool.clone(),
            self.jetstream.clone(),
            self.nats.stream.clone(),
            self.store.appended_signal(),
        );
        let mut total = 0;
        loop {
            match relay.publish_batch().await.expect("relay") {
                0 => return total,
                published => total += published,
            }
        }
    }

    /// Publishes an envelope by hand under any message id.
    pub async fn publish_raw(&self, subject: String, msg_id: &str, payload: Vec<u8>) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        self.jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// Publishes a stored envelope again under a fresh message id (beats de-duplication).
    pub async fn republish(&self, envelope: &EventEnvelope) {
        let payload = serde_json::to_vec(envelope).expect("json");
        let subject = envelope.subject(&self.nats.stream.subject_prefix);
        self.publish_raw(subject, &Uuid::new_v4().to_string(), payload)
            .await;
    }

    pub async fn row(&self, id: Uuid) -> Option<UserRow> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM users_view WHERE id = $1");
        sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .expect("row")
    }

    pub async fn rows(&self) -> Vec<UserRow> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM users_view ORDER BY id");
        sqlx::query_as(&sql).fetch_all(&self.db.pool).await.expect("rows")
    }

    pub async fn wait_for_version(&self, id: Uuid, version: i64) -> UserRow {
        eventually(WAIT, &format!("user {id} at version {version}"), || async {
            self.row(id).await.filter(|row| row.version >= version)
        })
        .await
    }

    /// The raw Redis document of a user.
    pub async fn document(&self, id: Uuid) -> Option<serde_json::Value> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.cache().key(id))
            .query_async(&mut self.redis.connection().await)
            .await
            .expect("redis get");
        raw.map(|raw| serde_json::from_str(&raw).expect("document json"))
    }

    /// Waits until the document of a user is at `version`.
    pub async fn wait_for_document(&self, id: Uuid, version: i64) -> serde_json::Value {
        eventually(
            WAIT,
            &format!("document of {id} at version {version}"),
            || async { self.document(id).await.filter(|doc| doc["version"] == version) },
        )
        .await
    }

    /// Waits until the consumer has delivered and had acknowledged every message.
    pub async fn wait_until_idle(&self) -> async_nats::jetstream::consumer::Info {
        eventually(WAIT, "the consumer to be idle", || async {
            let stream = self.jetstream.get_stream(&self.nats.stream.name).await.ok()?;
            let info = stream.consumer_info(projector::users::CONSUMER).await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(info)
        })
        .await
    }

    /// An access token for a new user who has `role` now (their write-side authority
    /// row exists, as the command API writes it on registration).
    pub async fn token(&self, role: Role) -> String {
        testkit::token_with_authority(&self.db.pool, &self.issuer, role).await
    }

    pub async fn cleanup(self) {
        self.nats.cleanup().await;
    }
}

pub fn registered(email: &str, name: &str, role: Role) -> UserEvent {
    UserEvent::Registered {
        email: Email::parse(email).expect("email"),
        name: UserName::parse(name).expect("name"),
        role,
    }
}

pub fn renamed(name: &str) -> UserEvent {
    UserEvent::Renamed {
        name: UserName::parse(name).expect("name"),
    }
}

pub fn role_changed(role: Role, previous_role: Role) -> UserEvent {
    UserEvent::RoleChanged { role, previous_role }
}

/// A unique email address.
pub fn email() -> String {
    format!("user-{}@example.com", testkit::unique_suffix())
}
