//! The faults, injected one at a time under load, and the time every service takes to be
//! ready again once the fault is over.

use crate::history::Recorder;
use crate::infra::{Postgres, Server};
use crate::stack::{REPLICAS, Service, Stack};
use anyhow::Result;
use std::time::{Duration, Instant};
use testkit::SmtpServer;

/// The private infrastructure the faults act on.
pub struct Infra {
    /// Postgres.
    pub pg: Postgres,
    /// redis-server.
    pub redis: Server,
    /// nats-server.
    pub nats: Server,
    /// SMTP server.
    pub smtp: SmtpServer,
}

/// One fault.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// SIGKILL one replica, start it again.
    Kill(Service, usize),
    /// nats-server stopped for longer than the duplicate window.
    NatsDown,
    /// redis-server stopped, started again empty.
    RedisDown,
    /// `pg_ctl restart -m fast`.
    PostgresRestart,
    /// `pg_ctl stop -m immediate`, then start.
    PostgresCrash,
    /// The SMTP server answers 451 to every message for a while.
    SmtpRefusing,
}

impl Fault {
    /// Its name in the report (also the phase of the requests made meanwhile).
    pub fn name(self) -> String {
        match self {
            Fault::Kill(service, i) => format!("SIGKILL {}#{i}", service.binary()),
            Fault::NatsDown => "NATS down".into(),
            Fault::RedisDown => "Redis down, back empty".into(),
            Fault::PostgresRestart => "Postgres restart".into(),
            Fault::PostgresCrash => "Postgres crash (immediate)".into(),
            Fault::SmtpRefusing => "SMTP refusing".into(),
        }
    }

    /// True when the bound on recovery is the restart of a process, not a dependency.
    pub fn is_restart(self) -> bool {
        matches!(self, Fault::Kill(..))
    }
}

/// The faults of a run: every service killed (one replica, or each replica when `all`),
/// then every dependency.
pub fn plan(all_replicas: bool) -> Vec<Fault> {
    let mut faults = Vec::new();
    for (n, service) in Service::ALL.into_iter().enumerate() {
        if all_replicas {
            faults.extend((0..REPLICAS).map(|i| Fault::Kill(service, i)));
        } else {
            faults.push(Fault::Kill(service, n % REPLICAS));
        }
    }
    // Redis last: when a service does not recover from it, the other faults still begin
    // with a healthy stack.
    faults.extend([
        Fault::NatsDown,
        Fault::PostgresRestart,
        Fault::PostgresCrash,
        Fault::SmtpRefusing,
        Fault::RedisDown,
    ]);
    faults
}

/// How long things last.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a dependency stays away (NATS: this plus the duplicate window).
    pub hold: Duration,
    /// The JetStream duplicate window of the run.
    pub duplicate_window: Duration,
    /// Load between two faults, after every service is ready again.
    pub settle: Duration,
    /// Longest wait for a service to be ready again before it counts as not recovered.
    pub recovery_limit: Duration,
}

/// What happened during one fault.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The fault.
    pub fault: Fault,
    /// From injection to restoration.
    pub duration: Duration,
    /// Per service: the time from restoration until all its replicas were ready
    /// (`None`: not within the limit).
    pub recovery: Vec<(Service, Option<Duration>)>,
    /// Services already not ready when the fault began (an earlier fault's doing).
    pub unready_before: Vec<Service>,
}

/// Injects `fault`, lifts it, measures recovery and lets the load run a while more.
pub async fn run(
    fault: Fault,
    infra: &mut Infra,
    stack: &mut Stack,
    recorder: &Recorder,
    timing: Timing,
) -> Result<Outcome> {
    let unready_before = unready(stack).await;
    recorder.set_phase(&fault.name());
    let injected = Instant::now();
    match fault {
        Fault::Kill(service, i) => {
            let index = stack.index_of(service, i);
            stack.kill(index);
            tokio::time::sleep(Duration::from_secs(1)).await;
            stack.spawn(index)?;
        }
        Fault::NatsDown => {
            infra.nats.stop();
            tokio::time::sleep(timing.duplicate_window + timing.hold).await;
            infra.nats.start().await?;
        }
        Fault::RedisDown => {
            infra.redis.stop();
            tokio::time::sleep(timing.hold).await;
            infra.redis.start().await?;
        }
        Fault::PostgresRestart => tokio::task::block_in_place(|| infra.pg.restart())?,
        Fault::PostgresCrash => {
            tokio::task::block_in_place(|| infra.pg.crash())?;
            tokio::time::sleep(timing.hold).await;
            tokio::task::block_in_place(|| infra.pg.start_server())?;
        }
        Fault::SmtpRefusing => {
            infra.smtp.refuse_next(usize::MAX / 2);
            tokio::time::sleep(timing.hold).await;
            infra.smtp.refuse_next(0);
        }
    }
    let restored = Instant::now();
    let recovery = measure_recovery(stack, restored, timing.recovery_limit).await;
    tokio::time::sleep(timing.settle).await;
    Ok(Outcome {
        fault,
        duration: restored - injected,
        recovery,
        unready_before,
    })
}

/// Polls every replica on its own until it is ready (a slow probe of one delays no other);
/// a service's recovery is its slowest replica's.
async fn measure_recovery(
    stack: &Stack,
    restored: Instant,
    limit: Duration,
) -> Vec<(Service, Option<Duration>)> {
    let http = reqwest::Client::new();
    let probes = stack.replicas.iter().map(|r| {
        let http = &http;
        async move {
            while restored.elapsed() < limit {
                if crate::stack::ready(http, &r.url).await {
                    return Some(restored.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        }
    });
    let first_ready = futures::future::join_all(probes).await;
    Service::ALL
        .into_iter()
        .map(|service| {
            let mut times = stack
                .replicas
                .iter()
                .zip(&first_ready)
                .filter(|(r, _)| r.service == service)
                .map(|(_, t)| *t);
            let slowest = times.try_fold(Duration::ZERO, |acc, t| Some(acc.max(t?)));
            (service, slowest)
        })
        .collect()
}

/// The services with a replica that is not ready right now.
async fn unready(stack: &Stack) -> Vec<Service> {
    let http = reqwest::Client::new();
    let probes = stack.replicas.iter().map(|r| crate::stack::ready(&http, &r.url));
    let ready = futures::future::join_all(probes).await;
    let mut services: Vec<Service> = stack
        .replicas
        .iter()
        .zip(ready)
        .filter(|(_, ready)| !ready)
        .map(|(r, _)| r.service)
        .collect();
    services.dedup();
    services
}
