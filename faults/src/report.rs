//! The printed result: one row per fault (duration, recovery per service, answers) and
//! one line per check.

use crate::checks::Check;
use crate::faults::Outcome;
use crate::history::{Counts, Record};
use crate::stack::Service;
use std::fmt::Write;
use std::time::Duration;

/// The recovery bounds a fault is held to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// A killed replica started again.
    pub restart: Duration,
    /// A dependency back.
    pub dependency: Duration,
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The table of faults, with the recovery checks appended to `checks`.
pub fn faults_table(
    outcomes: &[Outcome],
    records: &[Record],
    bounds: Bounds,
    checks: &mut Vec<Check>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| fault | duration | command-api | query-api | projector | workers | requests | 2xx | 4xx | 503 | 503 w/o Retry-After | 500 | no answer | max latency |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut phases: Vec<String> = vec!["warm-up".to_owned()];
    phases.extend(outcomes.iter().map(|o| o.fault.name()));
    phases.push("drain".to_owned());
    for phase in phases {
        let outcome = outcomes.iter().find(|o| o.fault.name() == phase);
        let c = Counts::of(records.iter().filter(|r| r.phase == phase));
        let mut row = format!("| {phase} | ");
        match outcome {
            Some(o) => {
                let _ = write!(row, "{} |", secs(o.duration));
                let bound = if o.fault.is_restart() {
                    bounds.restart
                } else {
                    bounds.dependency
                };
                for service in Service::ALL {
                    let time = o
                        .recovery
                        .iter()
                        .find(|(s, _)| *s == service)
                        .and_then(|(_, t)| *t);
                    let before = o.unready_before.contains(&service);
                    let cell = match time {
                        Some(t) if t <= bound => secs(t),
                        Some(t) => format!("**{}** (> {})", secs(t), secs(bound)),
                        None if before => "not ready (since before)".to_owned(),
                        None => "**not ready**".to_owned(),
                    };
                    let _ = write!(row, " {cell} |");
                    // A service that was down before this fault failed the earlier one's check.
                    let in_time = matches!(time, Some(t) if t <= bound);
                    if !(in_time || before && time.is_none()) {
                        checks.push(Check {
                            name: format!("{} ready by itself after {}", service.binary(), o.fault.name()),
                            ok: false,
                            detail: format!(
                                "{} (bound {})",
                                time.map_or("not within the limit".to_owned(), secs),
                                secs(bound)
                            ),
                        });
                    }
                }
            }
            None => row.push_str("– | – | – | – | – |"),
        }
        let _ = writeln!(
            row,
            " {} | {} | {} | {} | {} | {} | {} | {} |",
            c.total,
            c.ok,
            c.client,
            c.unavailable,
            c.unavailable_bare,
            c.internal + c.other_server,
            c.none,
            secs(c.max_latency)
        );
        out.push_str(&row);
    }
    let recovered = outcomes.len() * Service::ALL.len();
    let slow = checks
        .iter()
        .filter(|c| c.name.contains("ready by itself"))
        .count();
    checks.push(Check {
        name: "every service ready by itself after every fault".to_owned(),
        ok: slow == 0,
        detail: format!(
            "{slow} of {recovered} too slow (bounds: {} after a restart, {} after a dependency returns)",
            secs(bounds.restart),
            secs(bounds.dependency)
        ),
    });
    out
}

/// The checks, one line each, and whether all passed.
pub fn checks_table(checks: &[Check]) -> (String, bool) {
    let mut out = String::from("| check | result | figures |\n|---|---|---|\n");
    for c in checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            c.name,
            if c.ok { "pass" } else { "**FAIL**" },
            short(&c.detail.replace('|', "/"))
        );
    }
    (out, checks.iter().all(|c| c.ok))
}

/// At most 600 characters of a detail: the first offenders are enough to start from.
fn short(text: &str) -> String {
    match text.char_indices().nth(600) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
