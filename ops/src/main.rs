//! `ops`: the operator command line. It talks to the services' HTTP APIs with an
//! administrator's token, so it needs no database access and every action is the
//! administrator's (the workers record who retried or discarded what):
//!
//! * `ops status`: every projection (backlog, rows, lag in seconds) and every workers
//!   consumer (backlog), and the dead letters waiting;
//! * `ops dead-letters list | show <id> | retry <id> | retry --all [--effect E]
//!   [--error TEXT] [--older-than 2h] [--newer-than 7d] [--reason R] | discard <id> --reason R`:
//!   a retry of many is a run on the workers (in the background, chunk by chunk, so ten
//!   thousand go through), followed behind a progress bar with its rate and ETA;
//! * `ops projections rebuild [--reason R] [--detach] | rebuilds | generations |
//!   activate <n> | drop <n>`: a rebuild without downtime on the projector (a new
//!   generation of the read models built beside the live one and swapped in), followed
//!   behind a progress bar with rate, ETA and phase; a rollback activates a retired
//!   generation;
//! * `ops audit`: who retried or discarded what, when, why, and how it ended;
//! * `--json` on any command prints the machine-readable answer instead of tables.
//!
//! The token comes from `--token` / `OPS_TOKEN`, else from signing in with `--email` and
//! `--password` (`ADMIN_EMAIL`, `ADMIN_PASSWORD`).

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "ops",
    about = "Operate the CQRS backend: projections, consumers, dead letters"
)]
struct Cli {
    #[command(flatten)]
    api: ApiArgs,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ApiArgs {
    /// The command API (sign-in).
    #[arg(
        long,
        env = "OPS_COMMAND_URL",
        default_value = "http://localhost:8080",
        global = true
    )]
    command_url: String,
    /// The workers (consumers, dead letters).
    #[arg(
        long,
        env = "OPS_WORKERS_URL",
        default_value = "http://localhost:8082",
        global = true
    )]
    workers_url: String,
    /// The projector (projections).
    #[arg(
        long,
        env = "OPS_PROJECTOR_URL",
        default_value = "http://localhost:8083",
        global = true
    )]
    projector_url: String,
    /// An administrator's access token (else sign in with --email and --password).
    #[arg(long, env = "OPS_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// An administrator's email.
    #[arg(long, env = "ADMIN_EMAIL", global = true)]
    email: Option<String>,
    /// Their password.
    #[arg(long, env = "ADMIN_PASSWORD", global = true, hide_env_values = true)]
    password: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Projections, consumers and dead letters at a glance.
    Status,
    /// Side effects that failed for good.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLetters),
    /// Rebuilds without downtime, generations of the read models, rollback.
    #[command(subcommand)]
    Projections(Projections),
    /// What operators did: retries and discards, newest first.
    Audit {
        /// How many at most (up to 100, the newest).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum DeadLetters {
    /// The newest dead letters.
    List {
        /// `dead`, `resolved` or `discarded`.
        #[arg(long, default_value = "dead")]
        status: String,
        /// Only this side effect (e.g. `welcome_email`).
        #[arg(long)]
        effect: Option<String>,
        /// Only those whose last error contains this text (any case).
        #[arg(long)]
        error: Option<String>,
        /// Only those at least this old (`15m`, `2h`, `7d`).
        #[arg(long)]
        older_than: Option<String>,
        /// Only those at most this old.
        #[arg(long)]
        newer_than: Option<String>,
        /// How many at most.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One dead letter with its event and error.
    Show {
        /// Its id.
        id: Uuid,
    },
    /// Runs side effects again now: one, or every dead one (of one effect).
    Retry {
        /// Its id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<Uuid>,
        /// Every dead letter with status `dead`.
        #[arg(long)]
        all: bool,
        /// With --all: only this side effect.
        #[arg(long, requires = "all")]
        effect: Option<String>,
        /// With --all: only those whose last error contains this text (any case).
        #[arg(long, requires = "all")]
        error: Option<String>,
        /// With --all: only those at least this old (`15m`, `2h`, `7d`).
        #[arg(long, requires = "all")]
        older_than: Option<String>,
        /// With --all: only those at most this old.
        #[arg(long, requires = "all")]
        newer_than: Option<String>,
        /// With --all: why (recorded with who retried them).
        #[arg(long, requires = "all")]
        reason: Option<String>,
    },
    /// Gives up on one: it is never run again.
    Discard {
        /// Its id.
        id: Uuid,
        /// Why (recorded with who discarded it).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum Projections {
    /// Builds every read model again beside the live one and swaps it in (queries keep
    /// being answered throughout); followed behind a progress bar with rate and ETA.
    Rebuild {
        /// Why (recorded with who started it).
        #[arg(long)]
        reason: Option<String>,
        /// Start it and return at once (follow it with `ops projections rebuilds`).
        #[arg(long)]
        detach: bool,
    },
    /// The rebuilds and activations, newest first, with their progress.
    Rebuilds {
        /// How many at most (up to 100, the newest).
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// The generations of the read models: live, retired (kept for a rollback), dropped.
    Generations,
    /// Rolls back: makes a retired generation live again, caught up first.
    Activate {
        /// The generation.
        generation: i64,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Drops a retired generation's tables and documents.
    Drop {
        /// The generation.
        generation: i64,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// The services, with a token.
struct Api {
    http: reqwest::Client,
    args: ApiArgs,
    token: String,
}

impl Api {
    async fn connect(args: ApiArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let token = match (&args.token, &args.email, &args.password) {
            (Some(token), _, _) => token.clone(),
            (None, Some(email), Some(password)) => {
                let url = format!("{}/api/v1/auth/login", args.command_url);
                let body = json!({"email": email, "password": password});
                let answer = answer(http.post(&url).json(&body).send().await).await?;
                answer["data"]["accessToken"]
                    .as_str()
                    .context("the sign-in answer has no access token")?
                    .to_owned()
            }
            _ => bail!("give --token (OPS_TOKEN), or --email and --password (ADMIN_EMAIL, ADMIN_PASSWORD)"),
        };
        Ok(Self { http, args, token })
    }

    async fn get(&self, url: String) -> anyhow::Result<Value> {
        answer(self.http.get(&url).bearer_auth(&self.token).send().await).await
    }

    async fn text(&self, url: String) -> anyhow::Result<String> {
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        Ok(response.error_for_status()?.text().await?)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        answer(request.bearer_auth(&self.token).send().await).await
    }

    fn workers(&self, path: &str) -> String {
        format!("{}{path}", self.args.workers_url)
    }

    fn projector(&self, path: &str) -> String {
        format!("{}{path}", self.args.projector_url)
    }
}

/// The JSON body of a 2xx answer; otherwise the error envelope's code and message.
async fn answer(sent: reqwest::Result<reqwest::Response>) -> anyhow::Result<Value> {
    let response = sent.context("the service did not answer")?;
    let status = response.status();
    let url = response.url().clone();
    let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
        Value::Null
    } else {
        response.json().await.unwrap_or(Value::Null)
    };
    if !status.is_success() {
        bail!(
            "{url}: {status} {} {}",
            body["error"]["code"].as_str().unwrap_or(""),
            body["error"]["message"].as_str().unwrap_or("")
        );
    }
    Ok(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let api = Api::connect(cli.api).await?;
    match cli.command {
        Command::Status => status(&api, cli.json).await,
        Command::DeadLetters(command) => dead_letters(&api, command, cli.json).await,
        Command::Projections(command) => projections(&api, command, cli.json).await,
        Command::Audit { limit } => audit(&api, limit, cli.json).await,
    }
}

/// The value of `name{projection="<projection>"}` in a Prometheus text page.
fn gauge(metrics: &str, name: &str, projection: &str) -> Option<f64> {
    let series = format!("{name}{{projection=\"{projection}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
}

async fn status(api: &Api, json_output: bool) -> anyhow::Result<()> {
    let projections = api.get(api.projector("/api/v1/projections")).await?;
    let metrics = api.text(api.projector("/metrics")).await.unwrap_or_default();
    let consumers = api.get(api.workers("/api/v1/consumers")).await?;
    let dead = api
        .get(api.workers("/api/v1/dead-letters?status=dead&perPage=1"))
        .await?;
    let mut projections = projections["data"].as_array().cloned().unwrap_or_default();
    for projection in &mut projections {
        let name = projection["name"].as_str().unwrap_or_default().to_owned();
        projection["lagSeconds"] = json!(gauge(&metrics, "projection_lag_seconds", &name));
    }
    let waiting = dead["meta"]["pagination"]["total"].clone();
    if json_output {
        let all = json!({"projections": projections, "consumers": consumers["data"], "deadLetters": waiting});
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let mut projected = table(&[
        "projection",
        "consumer",
        "pending",
        "ack pending",
        "redelivered",
        "rows",
        "lag (s)",
        "state",
    ]);
    for p in &projections {
        projected.add_row(cells(
            p,
            &[
                "name",
                "consumer",
                "numPending",
                "numAckPending",
                "numRedelivered",
                "rows",
                "lagSeconds",
                "state",
            ],
        ));
    }
    println!("{projected}");
    let mut table = table(&[
        "workers consumer",
        "filter",
        "pending",
        "ack pending",
        "redelivered",
    ]);
    for c in consumers["data"].as_array().into_iter().flatten() {
        table.add_row(cells(
            c,
            &[
                "name",
                "filterSubject",
                "numPending",
                "numAckPending",
                "numRedelivered",
            ],
        ));
    }
    println!("{table}");
    println!("dead letters waiting: {waiting}");
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    table
}

/// The fields of `item` as table cells (`-` for null or missing).
fn cells(item: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .map(|field| match &item[*field] {
            Value::Null => "-".to_owned(),
            Value::String(text) => text.clone(),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.fract() != 0.0)
                .map_or_else(|| n.to_string(), |f| format!("{f:.1}")),
            other => other.to_string(),
        })
        .collect()
}

async fn dead_letters(api: &Api, command: DeadLetters, json_output: bool) -> anyhow::Result<()> {
    match command {
        DeadLetters::List {
            status,
            effect,
            error,
            older_than,
            newer_than,
            limit,
        } => {
            let filters = [
                ("effect", effect),
                ("error", error),
                ("olderThan", older_than),
                ("newerThan", newer_than),
            ];
            let filters: Vec<(&str, String)> = filters
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value)))
                .collect();
            let items = list(api, &status, &filters, limit).await?;
            if json_output {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                let mut table = table(&["id", "effect", "status", "attempts", "created", "error"]);
                for item in &items {
                    table.add_row(cells(
                        item,
                        &["id", "effect", "status", "attempts", "createdAt", "error"],
                    ));
                }
                println!("{table}");
            }
        }
        DeadLetters::Show { id } => {
            let letter = api
                .get(api.workers(&format!("/api/v1/dead-letters/{id}")))
                .await?;
            println!("{}", serde_json::to_string_pretty(&letter["data"])?);
        }
        DeadLetters::Retry { id: Some(id), .. } => {
            let url = api.workers(&format!("/api/v1/dead-letters/{id}/retry"));
            let retried = api.send(api.http.post(url)).await?;
            report(json_output, &retried["data"], "retried: now")?;
        }
        DeadLetters::Retry {
            id: None,
            effect,
            error,
            older_than,
            newer_than,
            reason,
            ..
        } => {
            let filter = json!({"effect": effect, "error": error, "olderThan": older_than,
                                "newerThan": newer_than, "reason": reason});
            retry_all(api, filter, json_output).await?
        }
        DeadLetters::Discard { id, reason } => {
            let url = api.workers(&format!("/api/v1/dead-letters/{id}"));
            api.send(api.http.delete(url).query(&[("reason", reason.as_str())]))
                .await?;
            report(
                json_output,
                &json!({"id": id, "status": "discarded"}),
                "discarded:",
            )?;
        }
    }
    Ok(())
}

fn report(json_output: bool, item: &Value, what: &str) -> anyhow::Result<()> {
    if json_output {
        println!("{}", serde_json::to_string_pretty(item)?);
    } else {
        println!("{what} {}", item["status"].as_str().unwrap_or("?"));
    }
    Ok(())
}

/// Up to `limit` dead letters with `status` (and `effect`), newest first, a page at a time.
async fn list(api: &Api, status: &str, filters: &[(&str, String)], limit: u32) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut page = 1;
    while items.len() < limit as usize {
        let mut query = vec![
            ("status", status.to_owned()),
            ("perPage", "100".to_owned()),
            ("page", page.to_string()),
        ];
        query.extend(filters.iter().cloned());
        let url = reqwest::Url::parse_with_params(&api.workers("/api/v1/dead-letters"), &query)?;
        let answer = api.get(url.into()).await?;
        let data = answer["data"].as_array().cloned().unwrap_or_default();
        if data.is_empty() {
            break;
        }
        items.extend(data);
        page += 1;
    }
    items.truncate(limit as usize);
    Ok(items)
}

/// Starts a bulk retry on the workers of every dead letter `filter` takes and follows it
/// behind a progress bar (rate and ETA) until it ends; fails when some failed again.
async fn retry_all(api: &Api, filter: Value, json_output: bool) -> anyhow::Result<()> {
    let body: serde_json::Map<String, Value> = filter
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let started = api
        .send(
            api.http
                .post(api.workers("/api/v1/dead-letters/retries"))
                .json(&body),
        )
        .await?;
    let id = started["data"]["id"]
        .as_str()
        .context("the run has no id")?
        .to_owned();
    let total = started["data"]["total"].as_u64().unwrap_or(0);
    let bar = if json_output {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} dead letters, {per_sec}, ETA {eta} {msg}")
            .expect("a valid template"),
    );
    let run = loop {
        let answer = api
            .get(api.workers(&format!("/api/v1/dead-letters/retries/{id}")))
            .await?;
        let run = answer["data"].clone();
        bar.set_position(run["processed"].as_u64().unwrap_or(0));
        bar.set_message(format!("({} failed)", run["failed"].as_u64().unwrap_or(0)));
        if run["status"] != "running" {
            break run;
        }
        if run["stalled"] == true {
            bail!(
                "bulk retry {id} stalled (its workers process stopped); start another to retry what is still dead"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    bar.finish();
    let failed = run["failed"].as_u64().unwrap_or(0);
    if json_output {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        println!(
            "{} of {} resolved, {failed} failed again{}",
            run["resolved"],
            run["total"],
            run["lastError"]
                .as_str()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
    }
    if run["status"] == "failed" {
        bail!(
            "bulk retry {id} stopped: {}",
            run["lastError"].as_str().unwrap_or("unknown error")
        );
    }
    if failed > 0 {
        bail!("{failed} dead letters failed again");
    }
    Ok(())
}

async fn audit(api: &Api, limit: u32, json_output: bool) -> anyhow::Result<()> {
    let per_page = limit.clamp(1, 100);
    let answer = api
        .get(api.workers(&format!("/api/v1/operator-actions?perPage={per_page}")))
        .await?;
    let actions = answer["data"].as_array().cloned().unwrap_or_default();
    if json_output {
        println!("{}", serde_json::to_string_pretty(&actions)?);
        return Ok(());
    }
    let mut table = table(&["when", "who", "action", "target", "reason", "outcome"]);
    for action in &actions {
        table.add_row(cells(
            action,
            &["at", "actorId", "action", "target", "reason", "outcome"],
        ));
    }
    println!("{table}");
    Ok(())
}

async fn projections(api: &Api, command: Projections, json_output: bool) -> anyhow::Result<()> {
    match command {
        Projections::Rebuild { reason, detach } => {
            let path = "/api/v1/projections/rebuilds";
            follow_run(api, path, reason, detach, json_output).await
        }
        Projections::Activate { generation, reason } => {
            let path = format!("/api/v1/projections/generations/{generation}/activate");
            follow_run(api, &path, reason, false, json_output).await
        }
        Projections::Drop { generation, reason } => {
            let url = reqwest::Url::parse_with_params(
                &api.projector(&format!("/api/v1/projections/generations/{generation}")),
                reason.iter().map(|reason| ("reason", reason.as_str())),
            )?;
            let answer = api.send(api.http.delete(url)).await?;
            report(
                json_output,
                &answer["data"],
                &format!("generation {generation} dropped"),
            )
        }
        Projections::Generations => {
            let answer = api.get(api.projector("/api/v1/projections/generations")).await?;
            let generations = answer["data"].as_array().cloned().unwrap_or_default();
            if json_output {
                println!("{}", serde_json::to_string_pretty(&generations)?);
                return Ok(());
            }
            let mut table = table(&[
                "generation",
                "state",
                "schema",
                "position",
                "live since",
                "retired at",
            ]);
            for g in &generations {
                table.add_row(cells(
                    g,
                    &[
                        "generation",
                        "state",
                        "schema",
                        "position",
                        "liveSince",
                        "retiredAt",
                    ],
                ));
            }
            println!("{table}");
            Ok(())
        }
        Projections::Rebuilds { limit } => {
            let per_page = limit.clamp(1, 100);
            let answer = api
                .get(api.projector(&format!("/api/v1/projections/rebuilds?perPage={per_page}")))
                .await?;
            let runs = answer["data"].as_array().cloned().unwrap_or_default();
            if json_output {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(());
            }
            let mut table = table(&[
                "started",
                "kind",
                "generation",
                "status",
                "phase",
                "events",
                "%",
                "ETA (s)",
                "error",
            ]);
            for run in &runs {
                let mut row = cells(
                    run,
                    &[
                        "startedAt",
                        "kind",
                        "generation",
                        "status",
                        "phase",
                        "eventsDone",
                        "percent",
                        "etaSeconds",
                        "error",
                    ],
                );
                row[5] = format!("{}/{}", run["eventsDone"], run["eventsTotal"]);
                table.add_row(row);
            }
            println!("{table}");
            Ok(())
        }
    }
}

/// Starts a rebuild or an activation at `path` on the projector and, unless `detach`,
/// follows it behind a progress bar (events replayed, rate, ETA, phase) until it ends;
/// fails when it failed.
async fn follow_run(
    api: &Api,
    path: &str,
    reason: Option<String>,
    detach: bool,
    json_output: bool,
) -> anyhow::Result<()> {
    let body = json!({ "reason": reason });
    let started = api.send(api.http.post(api.projector(path)).json(&body)).await?;
    let id = started["data"]["id"]
        .as_str()
        .context("the run has no id")?
        .to_owned();
    if detach {
        return report(json_output, &started["data"], &format!("rebuild {id} started"));
    }
    let bar = if json_output {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(started["data"]["eventsTotal"].as_u64().unwrap_or(0))
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events, {per_sec}, ETA {eta} {msg}")
            .expect("a valid template"),
    );
    let run = loop {
        let answer = api
            .get(api.projector(&format!("/api/v1/projections/rebuilds/{id}")))
            .await?;
        let run = answer["data"].clone();
        bar.set_length(run["eventsTotal"].as_u64().unwrap_or(0));
        bar.set_position(run["eventsDone"].as_u64().unwrap_or(0));
        bar.set_message(run["phase"].as_str().unwrap_or_default().to_owned());
        if run["status"] != "running" {
            break run;
        }
        if run["stalled"] == true {
            bail!("rebuild {id} stalled (its projector stopped); start it again");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    bar.finish();
    if json_output {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        println!(
            "generation {} {}: {} events replayed",
            run["generation"],
            if run["status"] == "done" {
                "is live"
            } else {
                "was not swapped in"
            },
            run["eventsDone"]
        );
        for check in run["checks"].as_array().into_iter().flatten() {
            println!(
                "  {}: {} rows (live had {}), {} streams, {} behind",
                check["projection"].as_str().unwrap_or_default(),
                check["rows"],
                check["liveRows"],
                check["streams"],
                check["behind"]
            );
        }
    }
    if run["status"] == "failed" {
        bail!(
            "rebuild {id} failed: {}",
            run["error"].as_str().unwrap_or("unknown error")
        );
    }
    Ok(())
}
