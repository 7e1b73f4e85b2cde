//! A redis-server process of a test's own, for tests that stop, pause or restart Redis
//! (the shared server on 6379 must never be touched).

use std::process::{Child, Command, Stdio};

/// A private redis-server on a free port; killed when dropped.
pub struct RedisServer {
    /// Its URL.
    pub url: String,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port (`redis-server` must be on the PATH).
    pub fn start() -> Self {
        let mut server = Self::reserve();
        server.restart();
        server
    }

    /// A server on a free port that is not started yet.
    pub fn reserve() -> Self {
        let port = crate::nats::free_port();
        Self {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            child: None,
        }
    }

    /// Starts it (again) on the same port, empty: nothing is saved to disk.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        // Answering before returning, so a test's next step does not race the start.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kills it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (`SIGSTOP`): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws it (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let pid = child.id().to_string();
            let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
            assert!(status.success(), "kill {signal} {pid}");
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.stop();
    }
}
