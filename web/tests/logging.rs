//! Every line logged while a request is handled carries the request's `requestId`,
//! `method` and `path`, and `userId` once the caller is known, at the top level of the
//! JSON line, as the services write them.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use tracing_subscriber::prelude::*;
use uuid::Uuid;
use web::{HttpSettings, harden};

/// The lines written, shared with the subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lines").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn parsed(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("lines").clone();
        String::from_utf8(bytes)
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect()
    }
}

async fn handler(Path(id): Path<Uuid>) -> &'static str {
    tracing::info!("before the caller is known");
    web::record_user_id(id);
    tracing::warn!("after the caller is known");
    tracing::info_span!("inner", step = 1).in_scope(|| tracing::info!("in a span of the handler's own"));
    "ok"
}

#[tokio::test]
async fn every_line_of_a_request_carries_its_id_method_path_and_user() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber =
        tracing_subscriber::registry().with(runtime::telemetry::json_lines(move || writer.clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    let app: Router = harden(
        Router::new().route("/users/{id}", get(handler)),
        &HttpSettings::default(),
    );
    let user = Uuid::new_v4();
    let path = format!("/users/{user}");
    let response = app
        .oneshot(
            Request::get(&path)
                .header("x-request-id", "follow-me-7")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), 200);

    let lines = lines.parsed();
    let of_request: Vec<&Value> = lines.iter().filter(|l| l["requestId"] == "follow-me-7").collect();
    let messages: Vec<&str> = of_request.iter().filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(
        messages,
        [
            "before the caller is known",
            "after the caller is known",
            "in a span of the handler's own",
            "request finished"
        ],
        "{lines:#?}"
    );
    for line in &of_request {
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["path"], path.as_str(), "{line}");
        assert_eq!(line["route"], "/users/{id}", "{line}");
    }
    assert!(of_request[0].get("userId").is_none(), "{}", of_request[0]);
    for line in &of_request[1..] {
        assert_eq!(line["userId"], user.to_string().as_str(), "{line}");
    }
    assert_eq!(of_request[2]["step"], 1);
    let access = of_request[3];
    assert_eq!(access["status"], 200);
    assert!(access["duration_ms"].is_number());
}
