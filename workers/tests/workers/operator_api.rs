//! The operator API: dead letters can be listed, inspected, retried and discarded by
//! administrators only; consumers and health are visible.

use crate::helpers::TestApp;
use domain::user::Role;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

/// An app whose first attempt already dead-letters, with SMTP refusing everything.
async fn app_with_dead_letters(names: &[&str]) -> (TestApp, Vec<Uuid>) {
    let app = TestApp::spawn_with(1, |s| s.retry.max_attempts = 1).await;
    app.smtp.refuse_next(usize::MAX);
    for name in names {
        app.register(name, &format!("{}@example.com", name.to_lowercase()))
            .await;
    }
    let ids = app.wait_for_dead_letters(names.len()).await;
    app.wait_until_handled(names.len() as u64).await;
    (app, ids)
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_list_dead_letters_newest_first_and_inspect_one() {
    let (app, ids) = app_with_dead_letters(&["Ada", "Bob", "Cyd"]).await;
    let admin = app.token(Role::Admin).await;

    let (status, body) = get(&app, "/api/v1/dead-letters?page=1&perPage=2", &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: Vec<&str> = body["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(listed, [ids[2].to_string(), ids[1].to_string()]);
    assert_eq!(
        body["meta"]["pagination"],
        serde_json::json!({"page": 1, "perPage": 2, "total": 3, "totalPages": 2, "hasNext": true, "hasPrev": false})
    );
    assert!(body["data"][0].get("event").is_none());
    let (_, page2) = get(&app, "/api/v1/dead-letters?page=2&perPage=2", &admin).await;
    assert_eq!(page2["data"][0]["id"], ids[0].to_string());

    let (_, resolved) = get(&app, "/api/v1/dead-letters?status=resolved", &admin).await;
    assert_eq!(resolved["meta"]["pagination"]["total"], 0);
    let (_, dead) = get(&app, "/api/v1/dead-letters?status=dead", &admin).await;
    assert_eq!(dead["meta"]["pagination"]["total"], 3);

    let (status, one) = get(&app, &format!("/api/v1/dead-letters/{}", ids[0]), &admin).await;
    assert_eq!(status, StatusCode::OK);
    let one = &one["data"];
    assert_eq!(one["status"], "dead");
    assert_eq!(one["attempts"], 1);
    assert_eq!(one["effect"], "welcome_email");
    assert_eq!(one["event"]["type"], "user.registered");
    assert_eq!(one["event"]["data"]["name"], "Ada");
    assert_eq!(one["eventId"], one["event"]["id"]);
    assert!(one["error"].as_str().unwrap_or("").contains("451"));
    assert!(one["createdAt"].is_string() && one["updatedAt"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_dead_letter_requests_are_refused_without_a_server_error() {
    let (app, _) = app_with_dead_letters(&["Ada"]).await;
    let admin = app.token(Role::Admin).await;
    for (path, field) in [
        ("/api/v1/dead-letters?perPage=101", "perPage"),
        ("/api/v1/dead-letters?perPage=0", "perPage"),
        ("/api/v1/dead-letters?page=0", "page"),
        ("/api/v1/dead-letters?page=x", "page"),
        ("/api/v1/dead-letters?status=lost", "status"),
        ("/api/v1/dead-letters?sort=id", "sort"),
        ("/api/v1/dead-letters/not-a-uuid", "id"),
    ] {
        let (status, body) = get(&app, path, &admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{path}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{path}: {body}");
    }
    let missing = Uuid::now_v7();
    let (status, body) = get(&app, &format!("/api/v1/dead-letters/{missing}"), &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, _) = post(&app, &format!("/api/v1/dead-letters/{missing}/retry"), &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_dead_letter_fails_while_smtp_refuses_and_resolves_it_once_accepted() {
    let (app, ids) = app_with_dead_letters(&["Ada"]).await;
    let admin = app.token(Role::Admin).await;
    let retry = format!("/api/v1/dead-letters/{}/retry", ids[0]);

    let (status, body) = post(&app, &retry, &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "RETRY_FAILED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&ids[0].to_string())
    );
    let (_, failed) = get(&app, &format!("/api/v1/dead-letters/{}", ids[0]), &admin).await;
    assert_eq!(failed["data"]["attempts"], 2);
    assert_eq!(failed["data"]["status"], "dead");

    app.smtp.refuse_next(0);
    let (status, body) = post(&app, &retry, &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "resolved");
    let emails = app.smtp.messages();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, ["ada@example.com"]);
    assert!(emails[0].data.contains("Hello Ada,"));

    let (status, body) = post(&app, &retry, &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("CONFLICT"))
    );
    assert_eq!(app.smtp.messages().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarding_a_dead_letter_marks_it_discarded_and_it_can_no_longer_be_retried() {
    let (app, ids) = app_with_dead_letters(&["Ada"]).await;
    let admin = app.token(Role::Admin).await;
    let path = format!("/api/v1/dead-letters/{}", ids[0]);

    let response = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, body) = get(&app, &path, &admin).await;
    assert_eq!(body["data"]["status"], "discarded");
    let (_, listed) = get(&app, "/api/v1/dead-letters?status=discarded", &admin).await;
    assert_eq!(listed["meta"]["pagination"]["total"], 1);

    app.smtp.refuse_next(0);
    let (status, _) = post(&app, &format!("{path}/retry"), &admin).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(app.smtp.messages().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_api_needs_an_administrator() {
    let (app, ids) = app_with_dead_letters(&["Ada"]).await;
    let user = app.token(Role::User).await;
    let one = format!("/api/v1/dead-letters/{}", ids[0]);
    let requests = [
        app.http.get(app.url("/api/v1/dead-letters")),
        app.http.get(app.url(&one)),
        app.http.post(app.url(&format!("{one}/retry"))),
        app.http.delete(app.url(&one)),
        app.http.get(app.url("/api/v1/consumers")),
    ];
    for request in requests {
        let anonymous = request.try_clone().expect("clone").send().await.expect("send");
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let body: Value = anonymous.json().await.expect("json");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        let bad = request.try_clone().expect("clone").bearer_auth("not-a-jwt");
        assert_eq!(bad.send().await.expect("send").status(), StatusCode::UNAUTHORIZED);
        let forbidden = request.bearer_auth(&user).send().await.expect("send");
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    }
    let (status, _) = get(&app, "/api/v1/dead-letters?perPage=1000", &user).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "authorisation comes before validation"
    );
    let (_, body) = get(&app, &one, &app.token(Role::Admin).await).await;
    assert_eq!(body["data"]["status"], "dead", "nothing was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_api_docs_are_served() {
    let app = TestApp::spawn().await;
    let live = app.http.get(app.url("/health/live")).send().await.expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    let ready: Value = app
        .http
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready")
        .json()
        .await
        .expect("json");
    assert_eq!(
        ready["data"]["checks"],
        serde_json::json!({"postgres": "up", "nats": "up"})
    );
    let docs: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("docs")
        .json()
        .await
        .expect("json");
    for path in [
        "/api/v1/dead-letters",
        "/api/v1/dead-letters/{id}",
        "/api/v1/dead-letters/{id}/retry",
        "/api/v1/consumers",
    ] {
        assert!(docs["paths"].get(path).is_some(), "{path} documented");
    }
    for (path, method) in [
        ("/api/v1/dead-letters/{id}", "get"),
        ("/api/v1/dead-letters/{id}", "delete"),
        ("/api/v1/dead-letters/{id}/retry", "post"),
    ] {
        let responses = &docs["paths"][path][method]["responses"];
        for code in ["400", "401", "403", "404", "503"] {
            assert!(responses.get(code).is_some(), "{method} {path} documents {code}");
        }
    }
    let listed =
        &docs["paths"]["/api/v1/consumers"]["get"]["responses"]["200"]["content"]["application/json"];
    let envelope = listed["schema"]["$ref"].as_str().expect("a named envelope");
    let name = envelope.rsplit('/').next().expect("schema name");
    let required = &docs["components"]["schemas"][name]["required"];
    assert_eq!(
        required,
        &serde_json::json!(["data", "meta"]),
        "the envelope, not a bare list"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_retry_and_discard_is_recorded_with_who_why_and_how_it_ended() {
    let (app, ids) = app_with_dead_letters(&["Ada", "Bob"]).await;
    let admin = app.token(Role::Admin).await;
    let (_, of_effect) = get(&app, "/api/v1/dead-letters?effect=welcome_email", &admin).await;
    assert_eq!(of_effect["meta"]["pagination"]["total"], 2);
    let (_, of_other) = get(&app, "/api/v1/dead-letters?effect=order_confirmation", &admin).await;
    assert_eq!(of_other["meta"]["pagination"]["total"], 0);

    let retry = format!("/api/v1/dead-letters/{}/retry", ids[0]);
    let (status, _) = post(&app, &retry, &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "SMTP still refuses");
    let discard = |reason: String| {
        app.http
            .delete(app.url(&format!("/api/v1/dead-letters/{}", ids[1])))
            .query(&[("reason", reason)])
            .bearer_auth(&admin)
            .send()
    };
    let too_long = discard("x".repeat(501)).await.expect("delete");
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    let discarded = discard("the address bounces".to_owned()).await.expect("delete");
    assert_eq!(discarded.status(), StatusCode::NO_CONTENT);
    let again = discard("a second time".to_owned()).await.expect("delete");
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "discarding is idempotent");
    app.smtp.refuse_next(0);
    let (status, _) = post(&app, &retry, &admin).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = get(&app, "/api/v1/operator-actions", &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["meta"]["pagination"]["total"], 3,
        "the refused discard did nothing"
    );
    let actions: Vec<(&str, &str, &str, &Value)> = body["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or(""),
                a["target"].as_str().unwrap_or(""),
                a["outcome"].as_str().unwrap_or(""),
                &a["reason"],
            )
        })
        .collect();
    let (first, second) = (ids[0].to_string(), ids[1].to_string());
    assert_eq!(
        actions[0],
        ("dead_letter.retry", first.as_str(), "resolved", &Value::Null)
    );
    assert_eq!(
        actions[1],
        (
            "dead_letter.discard",
            second.as_str(),
            "discarded",
            &Value::from("the address bounces")
        )
    );
    assert_eq!(
        (actions[2].0, actions[2].1),
        ("dead_letter.retry", first.as_str())
    );
    assert!(actions[2].2.starts_with("not resolved"), "{}", actions[2].2);
    let actors: Vec<&Value> = body["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| &a["actorId"])
        .collect();
    assert!(
        actors
            .iter()
            .all(|actor| *actor == actors[0] && actor.is_string())
    );
    let (status, _) = get(&app, "/api/v1/operator-actions", &app.token(Role::User).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}
