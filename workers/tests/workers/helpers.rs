//! A workers service started in-process against real Postgres, NATS and SMTP, with
//! helpers to publish events the way the command API does.

use async_nats::jetstream::{self, consumer};
use auth::{SigningKey, TokenIssuer};
use domain::user::{Email, Role, UserEvent, UserName};
use eventstore::{EventEnvelope, EventMetadata, EventStore, OutboxRelay, ensure_stream};
use std::sync::Arc;
use std::time::Duration;
use testkit::{SmtpServer, TestDb, TestNats, eventually};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workers::mail::Mailer;
use workers::registry::{Declaration, EFFECTS};
use workers::{Application, MailSettings, RetryPolicy, Settings, WebhookSettings};

/// How long waits may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Durable name of the welcome-email consumer (a deployment contract: JetStream keeps
/// its position under this name).
pub const WELCOME_CONSUMER: &str = "workers-welcome-email";

/// Durable name of the order-confirmation consumer.
pub const ORDER_CONFIRMATION_CONSUMER: &str = "workers-order-confirmation";

/// One running workers process.
struct Instance {
    address: std::net::SocketAddr,
    shutdown: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

/// The system under test and its surroundings.
pub struct TestApp {
    pub db: TestDb,
    pub nats: TestNats,
    pub smtp: SmtpServer,
    pub jetstream: jetstream::Context,
    pub http: reqwest::Client,
    pub store: EventStore,
    pub relay: OutboxRelay,
    issuer: TokenIssuer,
    instances: Vec<Instance>,
    effects: &'static [Declaration],
}

/// Settings for tests: port 0, fast retries, SMTP to `smtp`.
pub fn test_settings(db: &TestDb, nats: &TestNats, smtp: &SmtpServer) -> Settings {
    Settings {
        database_url: db.url.clone(),
        nats_url: nats.url.clone(),
        stream: nats.stream.clone(),
        bind_address: "127.0.0.1".into(),
        port: 0,
        mail: MailSettings {
            smtp_url: Some(smtp.url()),
            ..MailSettings::default()
        },
        retry: RetryPolicy {
            base: Duration::from_millis(5),
            max: Duration::from_millis(40),
            max_attempts: 5,
        },
        webhooks: WebhookSettings {
            policy: webhooks::DeliveryPolicy {
                backoff: runtime::backoff::Policy::new(Duration::from_millis(10), Duration::from_millis(50)),
                max_attempts: 3,
                disable_after: 0,
            },
            timeout: Duration::from_secs(2),
            concurrency: 8,
            per_endpoint: 2,
            poll: Duration::from_millis(50),
            // The test receivers listen on 127.0.0.1.
            networks: webhooks::NetworkPolicy::AllowPrivate,
        },
        ..Settings::default()
    }
}

impl TestApp {
    /// One instance with the test settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(1, |_| {}).await
    }

    /// `instances` replicas sharing one consumer, with settings adjusted by `adjust`.
    pub async fn spawn_with(instances: usize, adjust: impl Fn(&mut Settings)) -> Self {
        Self::spawn_custom(instances, adjust, None).await
    }

    /// Like [`TestApp::spawn_with`], sending through `mailer` when given.
    pub async fn spawn_custom(
        instances: usize,
        adjust: impl Fn(&mut Settings),
        mailer: Option<Arc<dyn Mailer>>,
    ) -> Self {
        Self::spawn_effects(instances, adjust, mailer, EFFECTS).await
    }

    /// One instance running only the side effects `effects`.
    pub async fn spawn_running(effects: &'static [Declaration]) -> Self {
        Self::spawn_effects(1, |_| {}, None, effects).await
    }

    async fn spawn_effects(
        instances: usize,
        adjust: impl Fn(&mut Settings),
        mailer: Option<Arc<dyn Mailer>>,
        effects: &'static [Declaration],
    ) -> Self {
        // `RUST_LOG=workers=debug cargo test -p workers -- --nocapture` shows the service's logs.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let db = TestDb::new().await;
        let nats = TestNats::new();
        let smtp = SmtpServer::start().await;
        let client = nats.client().await;
        let jetstream = jetstream::new(client.clone());
        ensure_stream(&jetstream, &nats.stream)
            .await
            .expect("test stream");
        let store = EventStore::new(db.pool.clone());
        let relay = OutboxRelay::new(
            db.pool.clone(),
            jetstream.clone(),
            nats.stream.clone(),
            store.appended_signal(),
        );
        let key = SigningKey::generate();
        key.publish(&db.pool).await.expect("publish signing key");
        let issuer = TokenIssuer::new(key, "cqrs-backend", chrono::Duration::minutes(15));
        let mut settings = test_settings(&db, &nats, &smtp);
        adjust(&mut settings);
        let mut app = Self {
            db,
            nats,
            smtp,
            jetstream,
            http: reqwest::Client::new(),
            store,
            relay,
            issuer,
            instances: Vec::new(),
            effects,
        };
        for _ in 0..instances {
            app.start_instance(settings.clone(), client.clone(), mailer.clone())
                .await;
        }
        app.wait_for_consumer().await;
        app
    }

    async fn start_instance(
        &mut self,
        settings: Settings,
        client: async_nats::Client,
        mailer: Option<Arc<dyn Mailer>>,
    ) {
        let pool = self.db.pool.clone();
        let mailer = match mailer {
            Some(mailer) => mailer,
            None => workers::mail::from_settings(&settings.mail).expect("mailer"),
        };
        let application = Application::build_with_effects(settings, pool, client, mailer, self.effects)
            .await
            .expect("build workers");
        let address = application.address();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(application.run(shutdown.clone()));
        self.instances.push(Instance {
            address,
            shutdown,
            handle,
        });
    }

    /// Waits until the workers created all their consumers.
    async fn wait_for_consumer(&self) {
        for subscription in self.effects.iter().flat_map(Declaration::subscriptions) {
            let consumer = subscription.consumer;
            eventually(WAIT, &format!("the workers' consumer {consumer}"), || async {
                self.consumer_info_of(&consumer).await
            })
            .await;
        }
    }

    /// URL of `path` on the first instance.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.instances[0].address)
    }

    /// An access token for a new user who has `role` now (their write-side authority
    /// row exists, as the command API writes it on registration).
    pub async fn token(&self, role: Role) -> String {
        testkit::token_with_authority(&self.db.pool, &self.issuer, role).await
    }

    /// Registers a user the way the command API does: append, commit, relay to JetStream.
    pub async fn register(&self, name: &str, email: &str) -> EventEnvelope {
        let event = UserEvent::Registered {
            email: Email::parse(email).expect("valid email"),
            name: UserName::parse(name).expect("valid name"),
            role: Role::User,
        };
        let mut unit = self.store.begin().await.expect("begin");
        let mut stored = unit
            .append(Uuid::now_v7(), 0, &[event], &EventMetadata::default())
            .await
            .expect("append");
        unit.commit().await.expect("commit");
        self.relay.publish_batch().await.expect("relay");
        stored.remove(0)
    }

    /// Publishes an event again under another `Nats-Msg-Id`, so JetStream keeps the copy.
    pub async fn republish(&self, envelope: &EventEnvelope) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{}-again", envelope.id).as_str());
        let payload = serde_json::to_vec(envelope).expect("envelope json");
        self.publish_raw(
            &envelope.subject(&self.nats.stream.subject_prefix),
            headers,
            payload,
        )
        .await;
    }

    /// Publishes any payload on a subject.
    pub async fn publish_raw(&self, subject: &str, headers: async_nats::HeaderMap, payload: Vec<u8>) {
        self.jetstream
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// The welcome-email consumer's state, once it exists.
    pub async fn consumer_info(&self) -> Option<consumer::Info> {
        self.consumer_info_of(WELCOME_CONSUMER).await
    }

    /// The state of the consumer named `consumer`, once it exists.
    pub async fn consumer_info_of(&self, consumer: &str) -> Option<consumer::Info> {
        let stream = self.jetstream.get_stream(&self.nats.stream.name).await.ok()?;
        stream.consumer_info(consumer).await.ok()
    }

    /// The stream sequence of the last message published so far.
    pub async fn last_sequence(&self) -> u64 {
        let mut stream = self
            .jetstream
            .get_stream(&self.nats.stream.name)
            .await
            .expect("test stream");
        stream.info().await.expect("stream info").state.last_sequence
    }

    /// Waits until `consumer` delivered everything up to stream sequence `sequence` and
    /// has nothing left pending or unacknowledged.
    pub async fn wait_until_handled_by(&self, consumer: &str, sequence: u64) {
        eventually(WAIT, &format!("{consumer} to acknowledge everything"), || async {
            let info = self.consumer_info_of(consumer).await?;
            (info.delivered.stream_sequence >= sequence && info.num_ack_pending == 0 && info.num_pending == 0)
                .then_some(())
        })
        .await;
    }

    /// Waits until the first `messages` messages of the stream were handled and acked.
    pub async fn wait_until_handled(&self, messages: u64) {
        eventually(WAIT, "every message to be acknowledged", || async {
            let info = self.consumer_info().await?;
            (info.ack_floor.stream_sequence >= messages && info.num_ack_pending == 0 && info.num_pending == 0)
                .then_some(())
        })
        .await;
    }

    /// Waits until `count` emails arrived, and returns them.
    pub async fn wait_for_emails(&self, count: usize) -> Vec<testkit::ReceivedMail> {
        eventually(WAIT, &format!("{count} email(s)"), || async {
            let messages = self.smtp.messages();
            (messages.len() >= count).then_some(messages)
        })
        .await
    }

    /// Ids of the dead letters, oldest first.
    pub async fn dead_letter_ids(&self) -> Vec<Uuid> {
        sqlx::query_scalar("SELECT id FROM dead_letters ORDER BY created_at, id")
            .fetch_all(&self.db.pool)
            .await
            .expect("dead letters")
    }

    /// Waits until there are `count` dead letters and returns their ids, oldest first.
    pub async fn wait_for_dead_letters(&self, count: usize) -> Vec<Uuid> {
        eventually(WAIT, &format!("{count} dead letter(s)"), || async {
            let ids = self.dead_letter_ids().await;
            (ids.len() >= count).then_some(ids)
        })
        .await
    }

    /// Signals every instance to shut down, without waiting.
    pub fn cancel(&self) {
        for instance in &self.instances {
            instance.shutdown.cancel();
        }
    }

    /// Shuts every instance down and waits until they stopped (in-flight work finished).
    pub async fn shutdown(&mut self) {
        self.cancel();
        for instance in self.instances.drain(..) {
            instance
                .handle
                .await
                .expect("workers task")
                .expect("workers served");
        }
    }

    /// Shuts down and deletes the test stream.
    pub async fn stop(mut self) {
        self.shutdown().await;
        self.nats.cleanup().await;
    }
}
