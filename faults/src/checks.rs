//! The checks of the history: answers (no 500, 503 with Retry-After, nothing hung), the
//! event store against the 2xx commands, JetStream against the event store, and the emails.
//! Read models are checked in `models`.

use crate::fold::{Event, Folded};
use crate::history::{Counts, Record};
use anyhow::Result;
use std::collections::{BTreeMap, HashMap, HashSet};
use testkit::SmtpServer;
use uuid::Uuid;

/// One check's verdict.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// Figures, and the first offenders when it failed.
    pub detail: String,
}

impl Check {
    /// A verdict from a count of offenders.
    pub fn count(name: &str, offenders: usize, of: usize, examples: &[String]) -> Self {
        let mut detail = format!("{offenders} of {of}");
        if !examples.is_empty() {
            detail.push_str(&format!(
                ": {}",
                examples.iter().take(6).cloned().collect::<Vec<_>>().join("; ")
            ));
        }
        Self {
            name: name.to_owned(),
            ok: offenders == 0,
            detail,
        }
    }
}

/// Counts by route of the records matching `keep`, largest first.
fn by_route(records: &[Record], keep: impl Fn(&Record) -> bool) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| keep(r)) {
        *counts
            .entry(format!("{} {} in {}", r.method, r.route, r.phase))
            .or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.into_iter().map(|(k, n)| format!("{n}× {k}")).collect()
}

/// The longest a request may take, fault or no fault: a dependency that is away costs
/// "a small, bounded time" (DESIGN.md guarantee 8), not the 10 s request timeout.
pub const LATENCY_BOUND: std::time::Duration = std::time::Duration::from_secs(3);

/// No 500 (no 5xx but 503), every 503 with `Retry-After`, no request left hanging, every
/// answer within [`LATENCY_BOUND`].
pub fn answers(records: &[Record]) -> Vec<Check> {
    let c = Counts::of(records);
    let server_error = |r: &Record| r.status >= 500 && r.status != 503;
    let bare = |r: &Record| r.status == 503 && r.retry_after.is_none();
    let hung = |r: &Record| r.timed_out;
    let slow = |r: &Record| r.latency > LATENCY_BOUND;
    vec![
        Check::count(
            "no 500 (no 5xx but 503)",
            c.internal + c.other_server,
            c.total,
            &by_route(records, server_error),
        ),
        Check::count(
            "every 503 carries Retry-After",
            c.unavailable_bare,
            c.unavailable,
            &by_route(records, bare),
        ),
        Check::count(
            "no request hung (client timeout 15 s)",
            records.iter().filter(|r| hung(r)).count(),
            c.total,
            &by_route(records, hung),
        ),
        Check::count(
            "every answer within 3 s",
            records.iter().filter(|r| slow(r)).count(),
            c.total,
            &by_route(records, slow),
        ),
    ]
}

/// Every 2xx command's events are in the store exactly once; 4xx commands appended nothing.
pub fn store(records: &[Record], events: &[Event]) -> Vec<Check> {
    let mut by_request: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in events {
        if let Some(c) = &e.correlation_id {
            by_request.entry(c.as_str()).or_default().push(e);
        }
    }
    let (mut checked, mut wrong, mut examples) = (0, 0, Vec::new());
    for r in records
        .iter()
        .filter(|r| r.command && (200..300).contains(&r.status))
    {
        if r.route == "/api/v1/auth/login" {
            continue;
        }
        checked += 1;
        let Some(expect) = &r.expect else {
            wrong += 1;
            examples.push(format!(
                "{} {} answered {} without an id",
                r.method, r.route, r.status
            ));
            continue;
        };
        let found = by_request.get(r.request_id.as_str()).cloned().unwrap_or_default();
        let main = found
            .iter()
            .filter(|e| e.event_type == expect.main && e.stream_id == expect.stream)
            .count();
        let mut ok = main == 1;
        let mut expected_total = 1;
        for (other, n) in &expect.others {
            ok &= found.iter().filter(|e| e.event_type == *other).count() == *n;
            expected_total += n;
        }
        ok &= found.len() == expected_total;
        if !ok {
            wrong += 1;
            examples.push(format!(
                "{} {} ({}): {} events, {} × {}",
                r.method,
                r.route,
                r.request_id,
                found.len(),
                main,
                expect.main
            ));
        }
    }
    let refused: Vec<&Record> = records
        .iter()
        .filter(|r| r.command && (400..500).contains(&r.status))
        .collect();
    let appended: Vec<String> = refused
        .iter()
        .filter(|r| by_request.contains_key(r.request_id.as_str()))
        .map(|r| format!("{} {} {}", r.method, r.route, r.status))
        .collect();
    vec![
        Check::count(
            "every 2xx command's events in the store exactly once",
            wrong,
            checked,
            &examples,
        ),
        Check::count(
            "no 4xx command appended an event",
            appended.len(),
            refused.len(),
            &appended,
        ),
    ]
}

/// Every stored event is in the JetStream stream (by `Nats-Msg-Id`).
pub async fn jetstream(nats_url: &str, stream: &str, events: &[Event]) -> Result<Check> {
    let client = async_nats::connect(nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await?;
    let state = stream.info().await?.state.clone();
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let header = message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned());
        let id = header.or_else(|| {
            let body: serde_json::Value = serde_json::from_slice(&message.payload).ok()?;
            body["id"].as_str().map(str::to_owned)
        });
        if let Some(id) = id.and_then(|s| Uuid::parse_str(&s).ok()) {
            *seen.entry(id).or_default() += 1;
        }
    }
    let missing: Vec<String> = events
        .iter()
        .filter(|e| !seen.contains_key(&e.id))
        .map(|e| format!("{} {}", e.event_type, e.id))
        .collect();
    // A message whose event is not in the store was published without being committed.
    let stored: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
    let phantoms: Vec<String> = seen
        .keys()
        .filter(|id| !stored.contains(id))
        .map(|id| format!("{id} in the stream only"))
        .collect();
    let duplicated = seen.values().filter(|n| **n > 1).count();
    let offenders: Vec<String> = missing.iter().chain(&phantoms).cloned().collect();
    let name = "every event in JetStream, none but them";
    let mut check = Check::count(name, offenders.len(), events.len(), &offenders);
    // Beyond the duplicate window a re-publish is allowed (consumers are idempotent): shown,
    // not failed.
    check.detail.push_str(&format!(
        " wrong ({} missing, {} not stored, {duplicated} published twice)",
        missing.len(),
        phantoms.len()
    ));
    Ok(check)
}

/// Every registration and every order got one email (one Message-ID), or a dead letter.
pub async fn emails(
    pool: &sqlx::PgPool,
    smtp: &SmtpServer,
    events: &[Event],
    folded: &Folded,
) -> Result<Check> {
    let dead: Vec<(Uuid, String)> = sqlx::query_as("SELECT event_id, effect FROM dead_letters")
        .fetch_all(pool)
        .await?;
    let dead: HashSet<(Uuid, String)> = dead.into_iter().collect();
    let messages = smtp.messages();
    let mut index: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &messages {
        for to in &m.to {
            index.entry(to.as_str()).or_default().push(m.data.as_str());
        }
    }
    // Emails are at-least-once with de-duplication (DESIGN.md guarantee 5): a worker
    // SIGKILLed after the SMTP server accepted a message and before it recorded that sends
    // it again on redelivery, with the same Message-ID (derived from the event id), which
    // receivers use to drop the copy. So an email is one Message-ID; copies are counted
    // apart and reported, and a second email with another Message-ID is still a failure.
    let copies = std::cell::Cell::new(0usize);
    let count = |to: &str, needle: &str| {
        let Some(mails) = index.get(to) else { return 0 };
        let matching: Vec<&str> = mails.iter().copied().filter(|d| d.contains(needle)).collect();
        let distinct: HashSet<&str> = matching.iter().map(|d| message_id(d).unwrap_or(d)).collect();
        copies.set(copies.get() + matching.len() - distinct.len());
        distinct.len()
    };
    let (mut expected, mut wrong, mut examples, mut dead_count) = (0, 0, Vec::new(), 0);
    for e in events {
        let (to, needle, effect) = match e.event_type.as_str() {
            "user.registered" => (
                e.data["email"].as_str().unwrap_or_default().to_owned(),
                "Subject: Welcome,".to_owned(),
                "welcome_email",
            ),
            "order.placed" => {
                let Some(order) = folded.orders.get(&e.stream_id) else {
                    continue;
                };
                let Some(owner) = folded.users.get(&order.user_id) else {
                    continue;
                };
                let simple = e.stream_id.simple().to_string();
                (
                    owner.email.clone(),
                    format!("Your order {} is confirmed", &simple[simple.len() - 8..]),
                    "order_confirmation",
                )
            }
            _ => continue,
        };
        expected += 1;
        let letters = usize::from(dead.contains(&(e.id, effect.to_owned())));
        dead_count += letters;
        // Never two emails, never none without a dead letter. An email and a dead letter
        // both is a redelivery of a sent email that failed again: the user has their one
        // email, and the operator's retry would repeat its Message-ID.
        let emails = count(&to, &needle);
        if emails > 1 || emails + letters == 0 {
            wrong += 1;
            examples.push(format!(
                "{} event {} → {emails} emails (dead letters {letters})",
                e.event_type, e.id
            ));
        }
    }
    let mut check = Check::count(
        "one email (by Message-ID) or a dead letter per registration and order",
        wrong,
        expected,
        &examples,
    );
    check.detail.push_str(&format!(
        " wrong ({} mails, {dead_count} dead letters, {} redelivered copies with the same Message-ID)",
        messages.len(),
        copies.get()
    ));
    Ok(check)
}

/// The `Message-ID` header of a raw message.
fn message_id(data: &str) -> Option<&str> {
    data.lines()
        .take_while(|line| !line.trim_end().is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id").then(|| value.trim())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Expect;
    use std::time::Duration;

    fn record(status: u16, request_id: &str, expect: Option<Expect>) -> Record {
        Record {
            phase: "test".into(),
            method: "POST",
            route: "/api/v1/users/{id}/orders",
            status,
            retry_after: None,
            latency: Duration::from_millis(5),
            request_id: request_id.into(),
            command: true,
            expect,
            timed_out: false,
        }
    }

    fn event(stream: Uuid, event_type: &str, request_id: &str) -> Event {
        Event {
            id: Uuid::now_v7(),
            stream_id: stream,
            stream_version: 1,
            event_type: event_type.into(),
            data: serde_json::Value::Null,
            correlation_id: Some(request_id.into()),
        }
    }

    #[test]
    fn the_message_id_is_read_from_the_headers_only() {
        let mail = "From: a@x\r\nMessage-ID: <welcome.1@x>\r\nSubject: Welcome, Ada\r\n\r\nMessage-ID: body";
        assert_eq!(message_id(mail), Some("<welcome.1@x>"));
        assert_eq!(message_id("Subject: x\r\n\r\nMessage-ID: <in-body@x>"), None);
    }

    #[test]
    fn an_order_is_stored_once_with_one_reservation_per_line_or_the_check_fails() {
        let order = Uuid::now_v7();
        let expect = Expect {
            stream: order,
            main: "order.placed",
            others: vec![("product.stock_reserved", 2)],
        };
        let records = vec![record(201, "r1", Some(expect))];
        let mut events = vec![
            event(order, "order.placed", "r1"),
            event(Uuid::now_v7(), "product.stock_reserved", "r1"),
            event(Uuid::now_v7(), "product.stock_reserved", "r1"),
        ];
        assert!(store(&records, &events)[0].ok);
        events.push(event(order, "order.placed", "r1"));
        assert!(!store(&records, &events)[0].ok, "a duplicate must fail");
        assert!(!store(&records, &events[1..3])[0].ok, "a missing order must fail");
    }

    #[test]
    fn a_refused_command_that_appended_fails_and_a_bare_503_fails() {
        let records = vec![record(422, "r2", None), record(503, "r3", None)];
        let events = vec![event(Uuid::now_v7(), "order.placed", "r2")];
        assert!(!store(&records, &events)[1].ok);
        let verdicts = answers(&records);
        assert!(verdicts[0].ok, "no 500");
        assert!(!verdicts[1].ok, "503 without Retry-After");
    }
}
