//! The private infrastructure of one run: a Postgres cluster made with initdb (so `pg_ctl`
//! can restart and crash it), a redis-server without persistence (a restart is empty), a
//! nats-server with JetStream on its own store, and testkit's SMTP server. Every process
//! listens on a free loopback port; nothing shared is ever touched.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits until something accepts TCP connections on `port`.
async fn wait_listening(port: u16, what: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not listen on port {port} within {limit:?}")
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The unprivileged account Postgres runs as when this runs as root (initdb refuses root).
const PG_USER: &str = "faultpg";

/// A private Postgres cluster.
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:<port>/cqrs`.
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    as_root: bool,
}

impl Postgres {
    /// initdb in `dir/pg` and start the server.
    pub async fn start(dir: &Path) -> Result<Self> {
        let bin = pg_bin()?;
        let as_root = is_root();
        // The server writes its log next to its data, in a directory it owns.
        let base = dir.join("pg");
        std::fs::create_dir_all(&base)?;
        if as_root {
            ensure_pg_user()?;
            run(Command::new("chown").args(["-R", PG_USER]).arg(&base), "chown")?;
        }
        let data = base.join("data");
        let port = free_port();
        let pg = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/cqrs"),
            bin,
            log: base.join("postgres.log"),
            data,
            as_root,
        };
        let initdb = pg.bin.join("initdb");
        run(
            pg.command(&initdb)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
                .arg(&pg.data),
            "initdb",
        )?;
        // Two replicas of four services with their pools need far more than the default 100.
        // fsync off is safe here: an immediate stop kills processes, not the machine.
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 400\nfsync = off\nfull_page_writes = off\n",
            pg.data.display()
        );
        let path = pg.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&conf);
        std::fs::write(&path, text)?;
        pg.start_server()?;
        wait_listening(port, "postgres", Duration::from_secs(30)).await?;
        Ok(pg)
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.stdin(Stdio::null());
        command
    }

    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        run(
            self.command(&pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(args),
            what,
        )
    }

    /// `pg_ctl start -w`.
    pub fn start_server(&self) -> Result<()> {
        self.pg_ctl(&["-w", "-t", "60", "start"], "pg_ctl start")
    }

    /// `pg_ctl restart -m fast`.
    pub fn restart(&self) -> Result<()> {
        self.pg_ctl(&["-w", "-t", "60", "-m", "fast", "restart"], "pg_ctl restart")
    }

    /// `pg_ctl stop -m immediate`: a crash, recovered from the WAL at the next start.
    pub fn crash(&self) -> Result<()> {
        self.pg_ctl(&["-w", "-m", "immediate", "stop"], "pg_ctl stop -m immediate")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "immediate", "stop"], "pg_ctl stop");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ensure_pg_user() -> Result<()> {
    let exists = Command::new("id")
        .arg(PG_USER)
        .output()
        .map(|o| o.status.success())?;
    if !exists {
        run(
            Command::new("useradd").args(["-r", "-M", "-s", "/usr/sbin/nologin", PG_USER]),
            "useradd faultpg",
        )?;
    }
    Ok(())
}

/// `PG_BIN`, else the newest `/usr/lib/postgresql/<n>/bin`, else the directory of `pg_ctl`.
fn pg_bin() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    if let Some(dir) = found.pop() {
        return Ok(dir);
    }
    let which = Command::new("sh").args(["-c", "command -v pg_ctl"]).output()?;
    let path = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    match path.parent() {
        Some(dir) if path.exists() => Ok(dir.to_owned()),
        _ => bail!("no PostgreSQL server binaries (initdb, pg_ctl): install postgresql or set PG_BIN"),
    }
}

/// A server process started from a fixed command line, stopped and started at will.
pub struct Server {
    /// Its URL.
    pub url: String,
    port: u16,
    what: &'static str,
    program: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// A redis-server that keeps nothing on disk: every start is empty.
    pub async fn redis(dir: &Path) -> Result<Self> {
        let port = free_port();
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let program = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        Self::launch(
            format!("redis://127.0.0.1:{port}"),
            port,
            "redis-server",
            program,
            &args,
            dir,
        )
        .await
    }

    /// A nats-server with JetStream storing in `dir/nats` (the stream survives restarts).
    pub async fn nats(dir: &Path) -> Result<Self> {
        let port = free_port();
        let store = dir.join("nats");
        let store = store.to_string_lossy();
        let args = ["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd", &store];
        let program = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| {
            [
                "/usr/sbin/nats-server",
                "/usr/bin/nats-server",
                "/usr/local/bin/nats-server",
            ]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server")
            .to_owned()
        });
        Self::launch(
            format!("nats://127.0.0.1:{port}"),
            port,
            "nats-server",
            program,
            &args,
            dir,
        )
        .await
    }

    async fn launch(
        url: String,
        port: u16,
        what: &'static str,
        program: String,
        args: &[&str],
        dir: &Path,
    ) -> Result<Self> {
        let mut server = Self {
            url,
            port,
            what,
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            log: dir.join(format!("{what}.log")),
            child: None,
        };
        server.start().await?;
        Ok(server)
    }

    /// Starts the process and waits until it listens.
    pub async fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.what, self.program))?;
        self.child = Some(child);
        wait_listening(self.port, self.what, Duration::from_secs(20)).await
    }

    /// Stops the process (SIGTERM, SIGKILL after 5 s) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
