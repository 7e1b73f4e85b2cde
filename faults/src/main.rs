//! The fault suite: two replicas of every service against private Postgres, NATS, Redis
//! and SMTP servers, a mixed load over both replicas of each API, one fault at a time, then
//! checks of the whole history. Prints a table; exits non-zero when a check fails.
//!
//! `faults [--ci] [--bin-dir DIR] [--keep]`: `--ci` is the short form run by `./dev test`.

mod checks;
mod client;
mod faults;
mod fold;
mod history;
mod infra;
mod load;
mod models;
mod report;
mod stack;

use anyhow::{Context, Result};
use checks::Check;
use faults::{Infra, Timing};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The size of a run.
struct Profile {
    users: usize,
    products: usize,
    pause: Duration,
    warm_up: Duration,
    timing: Timing,
    all_replicas: bool,
    settle_limit: Duration,
}

impl Profile {
    fn new(ci: bool) -> Self {
        let timing = |hold, window, settle, limit| Timing {
            hold: Duration::from_secs(hold),
            duplicate_window: Duration::from_secs(window),
            settle: Duration::from_secs(settle),
            recovery_limit: Duration::from_secs(limit),
        };
        if ci {
            Self {
                users: 4,
                products: 6,
                pause: Duration::from_millis(60),
                warm_up: Duration::from_secs(5),
                timing: timing(3, 2, 3, 30),
                all_replicas: false,
                settle_limit: Duration::from_secs(60),
            }
        } else {
            Self {
                users: 8,
                products: 12,
                pause: Duration::from_millis(40),
                warm_up: Duration::from_secs(10),
                timing: timing(8, 5, 8, 90),
                all_replicas: true,
                settle_limit: Duration::from_secs(120),
            }
        }
    }
}

const BOUNDS: report::Bounds = report::Bounds {
    restart: Duration::from_secs(10),
    dependency: Duration::from_secs(5),
};

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> std::process::ExitCode {
    // On SIGINT or SIGTERM the run is dropped, and with it every process it started.
    let outcome = tokio::select! {
        outcome = run() => outcome,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}; every process it started is stopped")),
    };
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("faults: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

async fn run() -> Result<bool> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ci = args.iter().any(|a| a == "--ci");
    let keep = args.iter().any(|a| a == "--keep");
    let bin_dir = match args.iter().position(|a| a == "--bin-dir") {
        Some(i) => PathBuf::from(args.get(i + 1).context("--bin-dir needs a directory")?),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .to_owned(),
    };
    let profile = Profile::new(ci);
    let dir = std::env::temp_dir().join(format!("faults-{}", testkit::unique_suffix()));
    std::fs::create_dir_all(dir.join("logs"))?;
    println!(
        "faults: {} run, binaries from {}, logs in {}",
        if ci { "CI-sized" } else { "full" },
        bin_dir.display(),
        dir.display()
    );

    let mut infra = Infra {
        pg: infra::Postgres::start(&dir).await?,
        redis: infra::Server::redis(&dir).await?,
        nats: infra::Server::nats(&dir).await?,
        smtp: testkit::SmtpServer::start().await,
    };
    let smtp_url = infra.smtp.url();
    let env = stack::StackEnv {
        database_url: &infra.pg.url,
        nats_url: &infra.nats.url,
        redis_url: &infra.redis.url,
        smtp_url: &smtp_url,
        duplicate_window: profile.timing.duplicate_window.as_secs(),
    };
    let mut stack = stack::Stack::start(&bin_dir, &dir.join("logs"), &env).await?;
    println!(
        "faults: 2 replicas of each service ready; load of {} users and an admin",
        profile.users
    );

    let recorder = history::Recorder::new();
    let api = client::Api::new(
        stack.urls(stack::Service::Command),
        stack.urls(stack::Service::Query),
        recorder.clone(),
    );
    let load = load::Load::new(api, profile.products, profile.pause);
    let mut tasks = vec![tokio::spawn(load.clone().run_admin())];
    tasks.extend((0..profile.users).map(|i| tokio::spawn(load.clone().run_user(i))));
    tokio::time::sleep(profile.warm_up).await;

    let mut outcomes = Vec::new();
    for fault in faults::plan(profile.all_replicas) {
        let started = Instant::now();
        let outcome = faults::run(fault, &mut infra, &mut stack, &recorder, profile.timing).await?;
        println!(
            "faults: {} done in {:.1}s",
            fault.name(),
            started.elapsed().as_secs_f64()
        );
        outcomes.push(outcome);
    }
    recorder.set_phase("drain");
    tokio::time::sleep(profile.timing.settle).await;
    load.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    }

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&infra.pg.url)
        .await?;
    let records = recorder.records();
    let eventual = settle(&pool, &infra, &stack, profile.settle_limit).await?;
    let events = fold::events(&pool).await?;
    let mut checks = checks::answers(&records);
    let exited = stack.exited();
    checks.push(Check::count(
        "every replica still running (none exited by itself)",
        exited.len(),
        stack.replicas.len(),
        &exited,
    ));
    checks.extend(checks::store(&records, &events));
    checks.extend(eventual);

    let table = report::faults_table(&outcomes, &records, BOUNDS, &mut checks);
    let (check_table, passed) = report::checks_table(&checks);
    let text = format!(
        "{table}\n{check_table}\n{} requests, {} events; logs in {}\n",
        records.len(),
        events.len(),
        dir.display()
    );
    println!("\n{text}");
    std::fs::write(dir.join("report.md"), &text)?;
    std::fs::write(dir.join("requests.csv"), history::csv(&records))?;
    drop(stack);
    drop(infra);
    if passed && !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "faults: {}",
        if passed {
            "every check passed"
        } else {
            "some checks FAILED"
        }
    );
    Ok(passed)
}

/// Runs the checks that need the pipeline to catch up until they pass or `limit` is over;
/// answers the last verdicts.
async fn settle(
    pool: &sqlx::PgPool,
    infra: &Infra,
    stack: &stack::Stack,
    limit: Duration,
) -> Result<Vec<Check>> {
    let start = Instant::now();
    loop {
        let checks = eventual(pool, infra, stack).await;
        if checks.iter().all(|c| c.ok) || start.elapsed() > limit {
            println!(
                "faults: pipeline checks settled after {:.1}s",
                start.elapsed().as_secs_f64()
            );
            return Ok(checks);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn eventual(pool: &sqlx::PgPool, infra: &Infra, stack: &stack::Stack) -> Vec<Check> {
    let events = match fold::events(pool).await {
        Ok(events) => events,
        Err(error) => return vec![failed("event store readable", error.into())],
    };
    let folded = fold::Folded::of(&events);
    let mut checks = Vec::new();
    match checks::jetstream(&infra.nats.url, "EVENTS", &events).await {
        Ok(check) => checks.push(check),
        Err(error) => checks.push(failed("every event in JetStream, none but them", error)),
    }
    let results = [
        models::postgres(pool, &folded)
            .await
            .map_err(|e| ("Postgres read models", e)),
        models::redis(&infra.redis.url, &folded)
            .await
            .map_err(|e| ("Redis read models", e)),
        models::top_answers(&stack.urls(stack::Service::Query), &folded)
            .await
            .map_err(|e| ("GET /products/top", e)),
    ];
    for result in results {
        match result {
            Ok(found) => checks.extend(found),
            Err((name, error)) => checks.push(failed(name, error)),
        }
    }
    match checks::emails(pool, &infra.smtp, &events, &folded).await {
        Ok(check) => checks.push(check),
        Err(error) => checks.push(failed(
            "one email or dead letter per registration and order",
            error,
        )),
    }
    checks
}

fn failed(name: &str, error: anyhow::Error) -> Check {
    Check {
        name: name.to_owned(),
        ok: false,
        detail: format!("could not check: {error:#}"),
    }
}
