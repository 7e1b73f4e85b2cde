//! A page of orders costs a bounded number of SQL statements, whatever its size.
//!
//! The statements are counted as sqlx reports them: every statement it executes is a
//! `tracing` event with target `sqlx::query` (statement logging is on by default). One
//! process-wide subscriber hands these events to the collector of the task-local scope
//! they happen in, so tests running in parallel do not interfere. (A scoped subscriber
//! per test is not reliable: with a single registered dispatcher, tracing caches a
//! callsite's interest from whichever thread hits it first.) Fetching lines per order
//! would add one statement on `order_lines_view` per order and fail here.

use crate::helpers::spawn_app;
use crate::shop::{NewLine, NewProduct};
use chrono::{Duration, Utc};
use query_api::orders::{ListOrdersParams, list_orders};
use std::sync::{Arc, Mutex, Once};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use uuid::Uuid;

/// The SQL of every statement sqlx reported in one scope.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

tokio::task_local! {
    /// Where the statements of the current task go.
    static COLLECTOR: Statements;
}

impl Statements {
    /// Runs `future`, collecting the statements it executes.
    async fn collect<F: Future>(&self, future: F) -> F::Output {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(ToCollector)
                .expect("no other global subscriber in the test binary");
        });
        COLLECTOR.scope(self.clone(), future).await
    }

    /// The statements reading `table`.
    fn on(&self, table: &str) -> usize {
        let needle = format!("from {table}");
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|sql| sql.to_lowercase().contains(&needle))
            .count()
    }

    fn clear(&self) {
        self.0.lock().expect("lock").clear();
    }
}

/// Concatenates the fields of one event (the `summary` and the full `db.statement`).
struct Sql(String);

impl Visit for Sql {
    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{value:?} "));
    }

    fn record_str(&mut self, _: &Field, value: &str) {
        self.0.push_str(value);
        self.0.push(' ');
    }
}

/// Forwards sqlx statement events to the current task's [`COLLECTOR`], if any.
struct ToCollector;

impl Subscriber for ToCollector {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target() == "sqlx::query" {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query" && COLLECTOR.try_with(|_| ()).is_ok()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut sql = Sql(String::new());
        event.record(&mut sql);
        let _ = COLLECTOR.try_with(|statements| statements.0.lock().expect("lock").push(sql.0));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_orders_costs_the_same_few_statements_whatever_its_size() {
    let app = spawn_app().await;
    let user = Uuid::now_v7();
    let tea = app.seed_product(NewProduct::named("tea")).await;
    let pot = app.seed_product(NewProduct::named("pot")).await;
    let start = Utc::now() - Duration::days(1);
    for i in 0..30 {
        let lines = [
            NewLine {
                product: &tea,
                quantity: 1,
                unit_price_cents: 100,
            },
            NewLine {
                product: &pot,
                quantity: 2,
                unit_price_cents: 300,
            },
        ];
        app.seed_order(user, start + Duration::minutes(i), false, &lines)
            .await;
    }
    let statements = Statements::default();

    for (per_page, page_mode) in [
        (1, true),
        (10, true),
        (30, true),
        (1, false),
        (25, false),
        (100, false),
    ] {
        let params = if page_mode {
            ListOrdersParams {
                per_page: Some(per_page),
                ..Default::default()
            }
        } else {
            ListOrdersParams {
                limit: Some(per_page),
                ..Default::default()
            }
        };
        let request = params.validate(user).expect("valid");
        statements.clear();
        let listing = statements
            .collect(list_orders(&app.db.pool, &request))
            .await
            .expect("the page is read");

        let served = listing.items();
        assert_eq!(served.len(), (per_page as usize).min(30));
        assert!(
            served.iter().all(|order| order.lines.len() == 2),
            "lines are included"
        );
        let what = format!(
            "perPage {per_page}, page mode {page_mode}: {:?}",
            statements.0.lock().expect("lock")
        );
        assert_eq!(statements.on("order_lines_view"), 1, "{what}");
        let orders_statements = if page_mode { 2 } else { 1 };
        assert_eq!(statements.on("orders_view"), orders_statements, "{what}");
    }
}
