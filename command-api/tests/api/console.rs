//! The operator console's page and relay, without the other services: the page is served
//! under a strict CSP, the relay reaches only `/api/v1/` of the workers and the projector,
//! and a service that does not answer is a 503 with `Retry-After`, never a 500.

use crate::helpers::{error_code, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_is_served_and_the_relay_stays_inside_the_two_services() {
    // Nothing listens on port 9 of this machine (discard).
    let app = spawn_with(|s| {
        s.console.workers_url = "http://127.0.0.1:9".into();
        s.console.projector_url = "http://127.0.0.1:9".into();
    })
    .await;
    let page = app.client.get(app.url("/console")).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("/console/app.js") && html.contains("Dead letters"));
    for (path, kind) in [("/console/app.js", "javascript"), ("/console/app.css", "css")] {
        let file = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(file.status(), 200);
        assert!(
            file.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .contains(kind)
        );
    }

    let (status, code, answer) = error_code(
        app.client
            .get(app.url("/console/api/workers/dead-letters"))
            .bearer_auth("whatever")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "SERVICE_UNAVAILABLE"), "{answer}");
    for path in [
        "/console/api/elsewhere/dead-letters",
        "/console/api/workers/dead-letters/%2E%2E/%2E%2E/metrics",
        "/console/api/workers/a//b",
    ] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), 404, "{path}");
    }
    let put = app
        .client
        .put(app.url("/console/api/workers/dead-letters"))
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 405);
}
