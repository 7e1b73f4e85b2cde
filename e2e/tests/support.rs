//! Starting the four service binaries for one test, on free ports, isolated from
//! every other test by database, stream, subject prefix and Redis prefix.
// Each test binary uses a different part of this shared module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::{SmtpServer, TestDb, TestNats, TestRedis, eventually};

/// The bootstrap administrator every stack starts with.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-pass-1";

/// The four services, killed when dropped.
pub struct Stack {
    pub db: TestDb,
    pub nats: TestNats,
    pub redis: TestRedis,
    pub smtp: SmtpServer,
    pub command: String,
    pub query: String,
    pub workers: String,
    pub projector: String,
    children: Vec<(String, Child)>,
    log_dir: PathBuf,
    common: Vec<(&'static str, String)>,
}

fn binary(name: &str) -> PathBuf {
    // Test executables live in target/<profile>/deps; the binaries one level up.
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or `cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// The address a service logged when it bound its port (each is started on port 0, so
/// no two stacks can race for one port).
fn bound_address(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "listening")
        .and_then(|line| line["http.address"].as_str().map(str::to_owned))
}

impl Stack {
    /// Starts everything and waits until every service is ready.
    pub async fn start() -> Self {
        let db = TestDb::new().await;
        let nats = TestNats::new();
        let redis = TestRedis::new();
        let smtp = SmtpServer::start().await;
        let log_dir = std::env::temp_dir().join(format!("e2e-{}", testkit::unique_suffix()));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let common = vec![
            ("DATABASE_URL", db.url.clone()),
            ("NATS_URL", nats.url.clone()),
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_KEY_PREFIX", redis.prefix.clone()),
            ("EVENTS_STREAM", nats.stream.name.clone()),
            ("EVENTS_SUBJECT_PREFIX", nats.stream.subject_prefix.clone()),
            ("BIND_ADDRESS", "127.0.0.1".into()),
            ("COMMAND_API_PORT", "0".into()),
            ("QUERY_API_PORT", "0".into()),
            ("WORKERS_PORT", "0".into()),
            ("PROJECTOR_PORT", "0".into()),
            ("SMTP_URL", smtp.url()),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "0".into()),
            ("WORKER_BACKOFF_BASE_MS", "20".into()),
            ("WORKER_BACKOFF_MAX_MS", "200".into()),
            // The tests' webhook receivers listen on 127.0.0.1.
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
            // The projector says at debug level which event it applied.
            ("RUST_LOG", "info,projector=debug".into()),
            ("ADMIN_EMAIL", ADMIN_EMAIL.into()),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ];
        let mut children = Vec::new();
        for name in ["command-api", "query-api", "projector", "workers"] {
            let log = std::fs::File::create(log_dir.join(format!("{name}.log"))).expect("log file");
            let child = Command::new(binary(name))
                .envs(common.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            children.push((name.to_owned(), child));
        }
        let mut bases = Vec::new();
        for (name, child) in &mut children {
            let path = &log_dir.join(format!("{name}.log"));
            let what = format!("{name} to listen (log in {})", path.display());
            let address = eventually(Duration::from_secs(60), &what, || {
                if let Some(status) = child.try_wait().ok().flatten() {
                    panic!(
                        "{name} exited with {status} before listening; log in {}",
                        path.display()
                    );
                }
                let address = bound_address(&std::fs::read_to_string(path).unwrap_or_default());
                async move { address }
            })
            .await;
            bases.push(format!("http://{address}"));
        }
        let [command, query, projector, workers] = <[String; 4]>::try_from(bases).expect("four services");
        let stack = Self {
            db,
            nats,
            redis,
            smtp,
            command,
            query,
            workers,
            projector,
            children,
            log_dir,
            common,
        };
        let client = reqwest::Client::new();
        for base in [&stack.command, &stack.query, &stack.workers, &stack.projector] {
            let what = format!("{base}/health/ready (logs in {})", stack.log_dir.display());
            eventually(Duration::from_secs(60), &what, || async {
                let response = client.get(format!("{base}/health/ready")).send().await.ok()?;
                response.status().is_success().then_some(())
            })
            .await;
        }
        stack
    }

    /// Starts one more command API beside the stack's (sharing its database, stream and
    /// Redis), with `extra` environment on top, and returns its base URL once it is ready.
    pub async fn spawn_command_api(&mut self, label: &str, extra: &[(&'static str, String)]) -> String {
        let path = self.log_dir.join(format!("{label}.log"));
        let log = std::fs::File::create(&path).expect("log file");
        let mut child = Command::new(binary("command-api"))
            .envs(self.common.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        let what = format!("{label} to listen (log in {})", path.display());
        let address = eventually(Duration::from_secs(60), &what, || {
            let exited = child.try_wait().ok().flatten();
            let address = bound_address(&std::fs::read_to_string(&path).unwrap_or_default());
            async move {
                if let Some(status) = exited {
                    panic!("{label} exited with {status} before listening");
                }
                address
            }
        })
        .await;
        self.children.push((label.to_owned(), child));
        let base = format!("http://{address}");
        let client = reqwest::Client::new();
        eventually(
            Duration::from_secs(60),
            &format!("{base}/health/ready"),
            || async {
                let response = client.get(format!("{base}/health/ready")).send().await.ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await;
        base
    }

    /// The log of one service, for assertions on logging.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        } else {
            eprintln!("service logs kept in {}", self.log_dir.display());
        }
    }
}
