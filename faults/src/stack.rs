//! Two replicas of each of the four service binaries against the private infrastructure,
//! each on its own port with its own log; a replica can be SIGKILLed and started again.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bootstrap administrator of the run.
pub const ADMIN_EMAIL: &str = "admin@faults.example.com";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-pass-1";
/// The Redis key prefix of the run.
pub const REDIS_PREFIX: &str = "faults";
/// Replicas of every service.
pub const REPLICAS: usize = 2;

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// Writes.
    Command,
    /// Reads.
    Query,
    /// Read models.
    Projector,
    /// Side effects.
    Workers,
}

impl Service {
    /// All four, in the order they are reported.
    pub const ALL: [Service; 4] = [
        Service::Command,
        Service::Query,
        Service::Projector,
        Service::Workers,
    ];

    /// The binary's name.
    pub fn binary(self) -> &'static str {
        match self {
            Service::Command => "command-api",
            Service::Query => "query-api",
            Service::Projector => "projector",
            Service::Workers => "workers",
        }
    }

    fn port_variable(self) -> &'static str {
        match self {
            Service::Command => "COMMAND_API_PORT",
            Service::Query => "QUERY_API_PORT",
            Service::Projector => "PROJECTOR_PORT",
            Service::Workers => "WORKERS_PORT",
        }
    }
}

/// One running (or killed) replica.
pub struct Replica {
    /// Which service.
    pub service: Service,
    /// 0 or 1.
    pub index: usize,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// `command-api#0`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.service.binary(), self.index)
    }
}

/// The eight replicas and what they share.
pub struct Stack {
    /// Every replica, grouped by service.
    pub replicas: Vec<Replica>,
    env: Vec<(String, String)>,
    bin_dir: PathBuf,
}

/// Where the infrastructure is, and the knobs of the run.
pub struct StackEnv<'a> {
    /// Postgres URL.
    pub database_url: &'a str,
    /// NATS URL.
    pub nats_url: &'a str,
    /// Redis URL.
    pub redis_url: &'a str,
    /// SMTP URL.
    pub smtp_url: &'a str,
    /// JetStream duplicate window, seconds.
    pub duplicate_window: u64,
}

impl Stack {
    /// Starts every replica and waits until all are ready.
    pub async fn start(bin_dir: &Path, log_dir: &Path, infra: &StackEnv<'_>) -> Result<Self> {
        for service in Service::ALL {
            let path = bin_dir.join(service.binary());
            if !path.exists() {
                bail!(
                    "{} is missing: build the services first (./dev faults does)",
                    path.display()
                );
            }
        }
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", infra.database_url.to_owned()),
            ("NATS_URL", infra.nats_url.to_owned()),
            ("REDIS_URL", infra.redis_url.to_owned()),
            ("REDIS_KEY_PREFIX", REDIS_PREFIX.to_owned()),
            ("EVENTS_STREAM", "EVENTS".to_owned()),
            ("EVENTS_SUBJECT_PREFIX", "events".to_owned()),
            (
                "EVENTS_DUPLICATE_WINDOW_SECONDS",
                infra.duplicate_window.to_string(),
            ),
            ("SMTP_URL", infra.smtp_url.to_owned()),
            ("SMTP_TIMEOUT_SECONDS", "5".to_owned()),
            ("BIND_ADDRESS", "127.0.0.1".to_owned()),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
            ("API_RATE_LIMIT", "0".to_owned()),
            ("LOGIN_FAILURE_LIMIT", "0".to_owned()),
            ("WORKER_BACKOFF_BASE_MS", "100".to_owned()),
            ("WORKER_BACKOFF_MAX_MS", "1000".to_owned()),
            ("WORKER_MAX_ATTEMPTS", "5".to_owned()),
            ("DATABASE_MAX_CONNECTIONS", "10".to_owned()),
            ("PROJECTOR_CONCURRENCY", "4".to_owned()),
            ("ARGON2_MAX_CONCURRENCY", "2".to_owned()),
            ("ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut stack = Self {
            replicas: Vec::new(),
            env,
            bin_dir: bin_dir.to_owned(),
        };
        for service in Service::ALL {
            for index in 0..REPLICAS {
                let port = crate::infra::free_port();
                stack.replicas.push(Replica {
                    service,
                    index,
                    url: format!("http://127.0.0.1:{port}"),
                    port,
                    log: log_dir.join(format!("{}-{index}.log", service.binary())),
                    child: None,
                });
            }
        }
        // One replica first, so that two processes do not race to create the database.
        stack.spawn(0)?;
        stack.wait_ready(0, Duration::from_secs(60)).await?;
        for i in 1..stack.replicas.len() {
            stack.spawn(i)?;
        }
        for i in 0..stack.replicas.len() {
            stack.wait_ready(i, Duration::from_secs(60)).await?;
        }
        Ok(stack)
    }

    /// The replicas' base URLs of one service.
    pub fn urls(&self, service: Service) -> Vec<String> {
        self.replicas
            .iter()
            .filter(|r| r.service == service)
            .map(|r| r.url.clone())
            .collect()
    }

    /// The position of a replica in [`Stack::replicas`].
    pub fn index_of(&self, service: Service, index: usize) -> usize {
        self.replicas
            .iter()
            .position(|r| r.service == service && r.index == index)
            .unwrap_or(0)
    }

    /// Starts replica `i`, its output appended to its log.
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        let replica = &mut self.replicas[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&replica.log)?;
        let child = Command::new(self.bin_dir.join(replica.service.binary()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(replica.service.port_variable(), replica.port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", replica.name()))?;
        replica.child = Some(child);
        Ok(())
    }

    /// SIGKILLs replica `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.replicas[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The replicas that are not running although the suite did not kill them, with how
    /// they ended (a crash, or a signal from outside the suite).
    pub fn exited(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        for replica in &mut self.replicas {
            let name = replica.name();
            match replica.child.as_mut().map(Child::try_wait) {
                Some(Ok(None)) => {}
                Some(Ok(Some(status))) => gone.push(format!("{name} exited: {status}")),
                Some(Err(error)) => gone.push(format!("{name}: {error}")),
                None => gone.push(format!("{name} not running")),
            }
        }
        gone
    }

    /// Waits until replica `i` is ready, or fails naming its log.
    pub async fn wait_ready(&self, i: usize, limit: Duration) -> Result<()> {
        let http = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < limit {
            if ready(&http, &self.replicas[i].url).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{} not ready within {limit:?} (log: {})",
            self.replicas[i].name(),
            self.replicas[i].log.display()
        )
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            self.kill(i);
        }
    }
}

/// Ready means `/health/ready` answers 200 and names no dependency `down`: a service that
/// answers while it still cannot reach Redis has not recovered.
pub async fn ready(http: &reqwest::Client, base: &str) -> bool {
    let request = http
        .get(format!("{base}/health/ready"))
        .timeout(Duration::from_secs(3))
        .send();
    let Ok(response) = request.await else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    let Ok(body) = response.text().await else {
        return false;
    };
    !body.contains("\"down\"")
}
