//! Isolated names on the shared NATS and Redis, and a private nats-server for tests
//! that stop and start it.

use eventstore::StreamSettings;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A stream name and subject prefix no other test uses, on `TEST_NATS_URL`.
pub struct TestNats {
    /// NATS URL.
    pub url: String,
    /// Stream settings unique to this test.
    pub stream: StreamSettings,
}

impl TestNats {
    /// Fresh names on the shared server.
    pub fn new() -> Self {
        Self::on(std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned()))
    }

    /// Fresh names on a given server.
    pub fn on(url: String) -> Self {
        let suffix = crate::unique_suffix();
        Self {
            url,
            stream: StreamSettings {
                name: format!("TEST_{suffix}"),
                subject_prefix: format!("test_{suffix}"),
                duplicate_window: Duration::from_secs(120),
            },
        }
    }

    /// A connected client.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("NATS is not reachable at {}: {e}", self.url))
    }

    /// Deletes the test stream (best effort).
    pub async fn cleanup(&self) {
        if let Ok(client) = async_nats::connect(&self.url).await {
            let _ = async_nats::jetstream::new(client)
                .delete_stream(&self.stream.name)
                .await;
        }
    }
}

impl Default for TestNats {
    fn default() -> Self {
        Self::new()
    }
}

/// A Redis key prefix no other test uses, on `TEST_REDIS_URL`.
pub struct TestRedis {
    /// Redis URL.
    pub url: String,
    /// Key prefix.
    pub prefix: String,
}

impl TestRedis {
    /// A fresh prefix.
    pub fn new() -> Self {
        Self {
            url: std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
            prefix: format!("test_{}", crate::unique_suffix()),
        }
    }

    /// A connection.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("Redis is not reachable at {}: {e}", self.url))
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

/// A nats-server process with JetStream on a free port, for tests that take NATS away.
pub struct NatsServer {
    /// Its URL.
    pub url: String,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl NatsServer {
    /// A server that is not started yet: its URL refuses connections.
    pub fn reserve() -> Self {
        let port = free_port();
        let store = std::env::temp_dir().join(format!("nats-test-{}", crate::unique_suffix()));
        Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
            child: None,
        }
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub async fn start(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| {
            [
                "/usr/sbin/nats-server",
                "/usr/bin/nats-server",
                "/usr/local/bin/nats-server",
            ]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server")
            .to_owned()
        });
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (set NATS_SERVER_BIN): {e}"));
        self.child = Some(child);
        crate::eventually(
            Duration::from_secs(10),
            "nats-server to accept connections",
            || async { async_nats::connect(&self.url).await.ok().map(|_| ()) },
        )
        .await;
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
